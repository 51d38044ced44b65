"""A minimal Django project for `pyfront serve examples/django` (no database)."""
DEBUG = False
SECRET_KEY = "example-only-change-me"
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
ROOT_URLCONF = "mysite.urls"
INSTALLED_APPS = []
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
STATIC_URL = "/static/"
USE_TZ = True
