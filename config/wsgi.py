"""WSGI entry point, served by gunicorn with config/gunicorn.py in production.

Host routing (app host, workspace subdomains, custom domains) happens inside Django:
pages.public.middleware.HostRoutingMiddleware.
"""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
