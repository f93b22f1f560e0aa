"""ASGI entry point: PyWSGIScriptAlias /asgi/django pwsite.asgi:application
interface=asgi python-path=.../t/django_site (t/asgi.t)"""
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pwsite.settings")
application = get_asgi_application()
