"""A tiny Django project for the corpus: Django's admin over SQLite, with one
model holding uploaded files (t/apps/corpus/django_admin)."""
