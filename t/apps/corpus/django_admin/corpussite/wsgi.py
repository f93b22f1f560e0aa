"""WSGI entry point (mod_pywsgi: corpussite.wsgi:application with
python-path=.../django_admin:.../corpus). The database is made by
`python3 manage.py corpus_init` (migrate + the admin user) beforehand."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "corpussite.settings")
application = get_wsgi_application()
