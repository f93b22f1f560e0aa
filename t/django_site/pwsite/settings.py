"""Settings of the test site: no database, no installed apps; CSRF through
its cookie (no sessions)."""

SECRET_KEY = "pwtest-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
ROOT_URLCONF = "pwsite.urls"
WSGI_APPLICATION = "pwsite.wsgi.application"
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES = {}
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": False,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
    ]},
}]
USE_I18N = False
# Django puts TIME_ZONE into os.environ["TZ"] and calls time.tzset(): in an
# Apache child that would change the time zone of the whole process (the
# error log's timestamps). None leaves the process alone.
TIME_ZONE = None
USE_TZ = False
