"""A lead captured before its visitor's first sighting is stored still gets the
first touch once the stream flush stores it."""

from __future__ import annotations

import pytest

from analytics import ingest
from analytics import services as analytics
from leads import services
from leads.models import Lead

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stream():
    ingest.redis_reset()
    ingest.partitions_forget()
    analytics.events_flush()  # nothing of earlier tests in the way


def _lands(workspace, funnel, step):
    """A visitor from the newsletter lands; their first sighting is only queued."""
    return analytics.visitor_identify_from(
        workspace=workspace,
        funnel_id=funnel.pk,
        step_id=step.pk,
        cookie_value=None,
        user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0",
        query={"utm_source": "newsletter", "utm_campaign": "spring"},
        referrer="https://mail.example.test/",
    )


def test_first_touch_arrives_with_the_flush(workspace, funnel, optin_step):
    ref = _lands(workspace, funnel, optin_step)
    result = services.lead_capture(
        step=optin_step, data={"email": "late@example.com"}, visitor_id=ref.public_id
    )
    lead = result.lead
    assert lead.first_source == ""  # the visitor row is not stored yet
    analytics.events_flush()
    lead.refresh_from_db()
    assert (lead.first_source, lead.first_campaign, lead.first_referrer) == (
        "newsletter",
        "spring",
        "https://mail.example.test/",
    )


def test_a_known_first_touch_or_an_erased_lead_is_left_alone(
    workspace, funnel, optin_step
):
    kept = _lands(workspace, funnel, optin_step)
    services.lead_capture(
        step=optin_step,
        data={"email": "kept@example.com"},
        visitor_id=kept.public_id,
        touch={"source": "google"},
    )
    erased = _lands(workspace, funnel, optin_step)
    gone = services.lead_capture(
        step=optin_step, data={"email": "gone@example.com"}, visitor_id=erased.public_id
    ).lead
    services.lead_erase(lead=gone)
    analytics.events_flush()
    assert Lead.objects.get(email="kept@example.com").first_source == "google"
    gone.refresh_from_db()
    assert gone.first_source == "" and gone.erased_at is not None
