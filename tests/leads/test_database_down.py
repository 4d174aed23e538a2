"""With PostgreSQL unreachable an opt-in gets a friendly 503 that keeps the form.

Real outages, no mocks: the connection points at a closed port, or Postgres itself
kills the session in the middle of the opt-in's transaction.
"""

from __future__ import annotations

import re
import socket
import time
from contextlib import contextmanager
from html import unescape

import pytest
from django.db import connection

from funnels.public_forms import form_token_issue
from leads.models import Lead, Submission

pytestmark = pytest.mark.django_db(transaction=True)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def database_unreachable():
    """Point the app's connection at a port nobody listens on."""
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(_closed_port()))
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)


def _post(visitor, step, data):
    return visitor.post(
        f"/{step.funnel.slug}/{step.slug}/optin/", data, REMOTE_ADDR="203.0.113.7"
    )


def _form(html: str) -> tuple[str, dict[str, str]]:
    action = unescape(re.search(r'<form method="post" action="([^"]*)"', html)[1])
    fields = {
        unescape(name): unescape(value)
        for name, value in re.findall(r'name="([^"]+)" value="([^"]*)"', html)
    }
    return action, fields


def test_optin_while_database_is_down_keeps_what_the_visitor_typed(
    visitor, optin_step, thanks_step
):
    """503 with Retry-After, the typed values in a form that posts them to the same
    URL; once Postgres is back, sending that form stores the lead."""
    data = {
        "email": "ann@example.com",
        "first_name": "Ann <3",
        "utm_note": 'say "hi"',
        "_of": form_token_issue(step_id=optin_step.pk, now=time.time() - 10),
    }
    # The visitor saw the page first, so serving knows the host (its last known
    # answer is what public serving falls back on while Postgres is down).
    visitor.get(f"/{optin_step.funnel.slug}/{optin_step.slug}/")
    with database_unreachable():
        response = _post(visitor, optin_step, data)
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    html = response.content.decode()
    assert "We couldn’t save that just now" in html
    action, fields = _form(html)
    assert action == f"/{optin_step.funnel.slug}/{optin_step.slug}/optin/"
    assert fields == data
    assert Lead.objects.count() == 0

    again = _post(visitor, optin_step, fields)
    assert again.status_code == 302
    assert Lead.objects.get().first_name == "Ann <3"


def test_database_dying_mid_optin_leaves_nothing_half_written(
    visitor, optin_step, thanks_step
):
    """Postgres kills the session after the lead row is written but before the
    submission is: the visitor gets the 503 form and no lead remains."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_die() RETURNS trigger AS $$
            BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_die BEFORE INSERT ON leads_submission
            FOR EACH ROW EXECUTE FUNCTION test_die();
            """
        )
    visitor.get(f"/{optin_step.funnel.slug}/{optin_step.slug}/")
    try:
        response = _post(
            visitor,
            optin_step,
            {
                "email": "bob@example.com",
                "_of": form_token_issue(step_id=optin_step.pk, now=time.time() - 10),
            },
        )
    finally:
        connection.close()
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER test_die ON leads_submission; DROP FUNCTION test_die();"
            )
    assert response.status_code == 503
    assert _form(response.content.decode())[1]["email"] == "bob@example.com"
    assert Lead.objects.count() == 0
    assert Submission.objects.count() == 0
