from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from leads import services
from leads.models import Lead, Submission, Webhook, WebhookDelivery
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db


def test_capture_creates_lead_and_submission(optin_step):
    """A first opt-in creates the lead and a submission with every known field."""
    result = services.lead_capture(
        step=optin_step,
        data={
            "email": " Ann@Example.COM ",
            "first_name": "Ann",
            "consent": "on",
            "custom_company": "Acme",
            "evil": "dropped",
        },
        nonce="n1",
        consent_text="Send me the guide",
        touch={"source": "facebook", "campaign": "spring"},
    )
    assert result.lead_created is True
    lead = Lead.objects.get()
    assert lead.email == "ann@example.com"
    assert lead.first_name == "Ann"
    assert lead.fields == {"company": "Acme"}
    assert lead.consent_given is True
    assert lead.consent_text == "Send me the guide"
    assert lead.last_source == "facebook"
    assert lead.submission_count == 1
    sub = Submission.objects.get()
    assert sub.data == {
        "email": "ann@example.com",
        "first_name": "Ann",
        "custom_company": "Acme",
        "consent": True,
    }
    assert sub.step == optin_step


def test_capture_same_email_any_case_updates_one_lead(optin_step):
    """A second opt-in with the e-mail in another case updates the same lead."""
    services.lead_capture(step=optin_step, data={"email": "bob@example.com"}, nonce="a")
    result = services.lead_capture(
        step=optin_step,
        data={"email": "BOB@example.com", "first_name": "Bob"},
        nonce="b",
    )
    assert result.lead_created is False
    assert Lead.objects.count() == 1
    lead = Lead.objects.get()
    assert lead.first_name == "Bob"
    assert lead.submission_count == 2
    assert Submission.objects.count() == 2


def test_replayed_post_adds_nothing(optin_step):
    """The same form nonce posted twice yields one submission."""
    first = services.lead_capture(step=optin_step, data={"email": "c@x.io"}, nonce="z")
    again = services.lead_capture(step=optin_step, data={"email": "c@x.io"}, nonce="z")
    assert again.replayed is True
    assert again.submission.pk == first.submission.pk
    assert Submission.objects.count() == 1
    assert Lead.objects.get().submission_count == 1


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": ""}, "email", "Enter your e-mail address."),
        ({"email": "not-an-email"}, "email", "Enter a valid e-mail address"),
        (
            {"email": "a@b.co", "first_name": "x" * 1_000_000},
            "first_name",
            "Please keep this under 100 characters.",
        ),
        ({"email": "a@b.co", "phone": "<script>"}, "phone", "Enter a phone number"),
        (
            {"email": "a@b.co", "custom_note": "y" * 5000},
            "custom_note",
            "Please keep this under 1000 characters.",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_written(optin_step, data, field, message):
    """Bad input raises a field error and leaves no lead and no submission."""
    with pytest.raises(ValidationError) as info:
        services.lead_capture(step=optin_step, data=data, nonce="q")
    assert message in info.value.message_dict[field][0]
    assert Lead.objects.count() == 0
    assert Submission.objects.count() == 0


def test_consent_required(optin_step):
    """When the form requires consent, a post without it is refused."""
    with pytest.raises(ValidationError) as info:
        services.lead_capture(
            step=optin_step, data={"email": "a@b.co"}, consent_required=True
        )
    assert "consent" in info.value.message_dict


def test_leads_are_per_workspace(optin_step, other_workspace):
    """The same e-mail in two workspaces is two leads."""
    other_step = StepFactory(funnel=FunnelFactory(workspace=other_workspace))
    services.lead_capture(step=optin_step, data={"email": "d@x.io"})
    services.lead_capture(step=other_step, data={"email": "d@x.io"})
    assert Lead.objects.count() == 2


def test_erase_removes_personal_data_keeps_counts(optin_step, workspace):
    """Erasing keeps the row and counts but no personal data."""
    result = services.lead_capture(
        step=optin_step,
        data={"email": "e@x.io", "first_name": "Eve", "phone": "123 456"},
        ip_address="10.0.0.1",
        user_agent="Firefox",
    )
    services.leads_tag(workspace=workspace, lead_ids=[result.lead.pk], tag_name="vip")
    from analytics.models import Visitor

    Visitor.objects.create(
        workspace=workspace, lead_id=result.lead.pk, ip="203.0.113.9"
    )
    lead = services.lead_erase(lead=result.lead)
    assert Visitor.objects.get(lead_id=lead.pk).ip is None
    lead.refresh_from_db()
    assert lead.email == f"erased-{lead.public_id}@erased.invalid"
    assert (lead.first_name, lead.phone, lead.fields) == ("", "", {})
    assert list(lead.tags.all()) == []
    sub = Submission.objects.get()
    assert (sub.data, sub.ip_address, sub.user_agent) == ({}, None, "")
    assert lead.submission_count == 1


def test_bulk_tag_ignores_foreign_leads(optin_step, workspace, other_workspace):
    """Bulk tagging only touches leads of the workspace."""
    mine = services.lead_capture(step=optin_step, data={"email": "m@x.io"}).lead
    other_step = StepFactory(funnel=FunnelFactory(workspace=other_workspace))
    theirs = services.lead_capture(step=other_step, data={"email": "t@x.io"}).lead
    count = services.leads_tag(
        workspace=workspace, lead_ids=[mine.pk, theirs.pk], tag_name="  Hot  lead "
    )
    assert count == 1
    assert [t.name for t in mine.tags.all()] == ["Hot lead"]
    assert list(theirs.tags.all()) == []


def test_capture_queues_webhooks(
    optin_step, workspace, django_capture_on_commit_callbacks
):
    """lead.created then lead.updated deliveries are created for subscribed hooks."""
    Webhook.objects.create(
        workspace=workspace, url="http://127.0.0.1:9/", events=["lead.created"]
    )
    services.lead_capture(step=optin_step, data={"email": "w@x.io"})
    services.lead_capture(step=optin_step, data={"email": "w@x.io"})
    assert list(WebhookDelivery.objects.values_list("event", flat=True)) == [
        "lead.created"
    ]
