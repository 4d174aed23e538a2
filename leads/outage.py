"""When PostgreSQL is unreachable, a visitor's form post gets a friendly 503 page.

Opt-ins are written to Postgres before the visitor moves on (all or nothing, in one
transaction), so with the database down nothing is stored, and nothing half-written
either: the transaction dies with the connection. Instead of a bare 500 the visitor
sees what they typed in a form that posts the same values (the signed form token
included) to the same address, to send again in a moment.

The page is rendered without the request context: context processors, sessions and
the user would each need the database that is down.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 30
MAX_FIELDS = 40
_SHOWN = ("email", "first_name", "last_name", "phone")
_LABELS = {
    "email": "E-mail",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
}


def outage_response(request: HttpRequest) -> HttpResponse:
    """503: the form again, every posted value kept, posting to the same URL."""
    values = [
        (key, value.replace("\x00", ""))
        for key, value in list(request.POST.items())[:MAX_FIELDS]
    ]
    shown = [
        {"name": key, "label": _LABELS[key], "value": value}
        for key, value in values
        if key in _SHOWN
    ]
    hidden = [(key, value) for key, value in values if key not in _SHOWN]
    html = render_to_string(
        "leads/form_unavailable.html",
        {"action": request.get_full_path(), "shown": shown, "hidden": hidden},
    )
    response = HttpResponse(html, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def keep_form_when_database_is_down(
    view: Callable[..., HttpResponse],
) -> Callable[..., HttpResponse]:
    """Wrap a public form view: a database outage answers ``outage_response``."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except (OperationalError, InterfaceError) as exc:  # lost or refused
            logger.error("database unavailable for %s: %s", request.path, exc)
            return outage_response(request)

    return wrapper
