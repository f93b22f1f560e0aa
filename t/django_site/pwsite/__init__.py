"""A minimal Django project (Debian's python3-django) for t/frameworks.t:
a view, a form POST protected by CSRF, and Django's own 404."""
