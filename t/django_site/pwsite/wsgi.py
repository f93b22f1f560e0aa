"""WSGI entry point: PyWSGIScriptAlias /p3/django pwsite.wsgi:application
python-path=.../t/django_site"""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pwsite.settings")
application = get_wsgi_application()
