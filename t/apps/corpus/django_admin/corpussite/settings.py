"""Settings: the admin with sessions, CSRF and messages; SQLite, media and
the upload spool directory under corpusdata.data_dir("django") (the server's
user must write there). Uploads above FILE_UPLOAD_MAX_MEMORY_SIZE (Django's
2.5 MB default) are spooled to FILE_UPLOAD_TEMP_DIR."""
import os

import corpusdata

DATA = corpusdata.data_dir("django")

SECRET_KEY = "corpus-test-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "corpussite.urls"
WSGI_APPLICATION = "corpussite.wsgi.application"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "docs",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.path.join(DATA, "db.sqlite3"),
    "OPTIONS": {"timeout": 20},
}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MEDIA_ROOT = os.path.join(DATA, "media")
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
FILE_UPLOAD_TEMP_DIR = os.path.join(DATA, "spool")
os.makedirs(FILE_UPLOAD_TEMP_DIR, exist_ok=True)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2621440
USE_I18N = False
USE_TZ = True
# The admin needs a time zone. Django also writes it into os.environ["TZ"]
# and calls time.tzset(), for the whole process (under Apache: the error
# log's timestamps too) -- as it does under any server; UTC changes nothing
# on a machine that runs in UTC.
TIME_ZONE = "UTC"
