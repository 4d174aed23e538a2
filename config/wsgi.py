"""WSGI entry point: Django behind the lean public-page dispatcher.

pages.serving.PublicDispatcher answers published pages, robots.txt, sitemap.xml and
custom domains without Django's URL resolver or middleware, and passes everything
else to Django. Served by gunicorn with config/gunicorn.py in production.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

django_application = get_wsgi_application()

from pages.serving import PublicDispatcher  # noqa: E402  (needs Django set up)

application = PublicDispatcher(django_application)
