"""The WSGI entry of the web service (gunicorn, `manage.py serve`, `runserver`): the tracking
endpoints' `/t/` paths are answered before Django (tracking.wsgi), the rest by Django."""

import os

from django.core.wsgi import get_wsgi_application

from tracking.wsgi import in_front_of

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")

application = in_front_of(get_wsgi_application())
