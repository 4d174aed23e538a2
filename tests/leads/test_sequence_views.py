"""Sequence pages: build a sequence, start it for a dropped-here cohort, read its
results; the public unsubscribe, pixel and link redirect. Scoped per workspace."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from leads.models import (
    Lead,
    Order,
    Sequence,
    SequenceEnrollment,
    SequenceSend,
)
from leads.sequences import services as seq
from tests.conftest import public_host
from tests.leads.test_dropped import PERIOD, leak  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def sequence(workspace, funnel):
    s = seq.sequence_save(workspace=workspace, name="Win back", funnel=funnel)
    seq.sequence_step_save(
        sequence=s,
        subject="Hi {{ first_name }}",
        body="Come back: {{ funnel_url }}",
        delay_minutes=0,
    )
    return s


def _sent(sequence, workspace, email="ann@example.com"):
    lead = Lead.objects.create(workspace=workspace, email=email, first_name="Ann")
    seq.sequence_enroll(sequence=sequence, lead_ids=[lead.pk], source="manual")
    enrollment = SequenceEnrollment.objects.get(lead=lead)
    seq.enrollment_send_next(enrollment_id=enrollment.pk)
    return enrollment


def test_owner_builds_a_sequence_with_two_emails(owner_client, workspace, funnel):
    response = owner_client.post(
        reverse("leads:sequence_create"),
        {
            "name": "Win back",
            "funnel": funnel.pk,
            "trigger": "manual",
            "is_active": "on",
        },
    )
    sequence = Sequence.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("leads:sequence_detail", args=[sequence.pk])
    add = reverse("leads:sequence_step_add", args=[sequence.pk])
    owner_client.post(
        add, {"delay": "0", "unit": "minutes", "subject": "First", "body": "One"}
    )
    owner_client.post(
        add, {"delay": "2", "unit": "days", "subject": "Second", "body": "Two"}
    )
    assert list(sequence.steps.values_list("subject", "delay_minutes", "position")) == [
        ("First", 0, 0),
        ("Second", 2880, 1),
    ]
    html = owner_client.get(
        reverse("leads:sequence_detail", args=[sequence.pk])
    ).content.decode()
    assert "2 days after the one before" in html and "at once" in html
    assert 'id="revival">Of 0 enrolled, 0 came back, 0 bought.' in html
    # A step with no subject is refused on the page, with the message.
    response = owner_client.post(
        add, {"delay": "1", "unit": "hours", "subject": "", "body": "x"}
    )
    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    step = sequence.steps.get(position=1)
    response = owner_client.post(
        reverse("leads:sequence_step_edit", args=[sequence.pk, step.pk]),
        {"delay": "3", "unit": "hours", "subject": "Second!", "body": "Two"},
    )
    step.refresh_from_db()
    assert (step.subject, step.delay_minutes) == ("Second!", 180)
    # An edit with no subject is refused on its page and changes nothing.
    response = owner_client.post(
        reverse("leads:sequence_step_edit", args=[sequence.pk, step.pk]),
        {"delay": "9", "unit": "hours", "subject": "", "body": "Changed"},
    )
    assert response.status_code == 422
    assert "This field is required." in response.content.decode()
    step.refresh_from_db()
    assert (step.subject, step.body, step.delay_minutes) == ("Second!", "Two", 180)
    # Bounds: a wait over a year and a body over 20,000 characters are refused.
    for data, message in (
        ({"delay": "366", "unit": "days", "body": "x"}, "Wait at most 365 days"),
        ({"delay": "1", "unit": "days", "body": "x" * 20_001}, "at most 20000"),
    ):
        response = owner_client.post(
            reverse("leads:sequence_step_edit", args=[sequence.pk, step.pk]),
            {"subject": "Too much", **data},
        )
        assert response.status_code == 422
        assert message in response.content.decode()
    step.refresh_from_db()
    assert (step.subject, step.delay_minutes) == ("Second!", 180)


def test_an_email_that_went_out_cannot_be_removed(owner_client, sequence, workspace):
    _sent(sequence, workspace)
    step = sequence.steps.get()
    owner_client.post(
        reverse("leads:sequence_step_delete", args=[sequence.pk, step.pk])
    )
    assert sequence.steps.count() == 1


def test_strangers_get_404_for_every_sequence_page(
    client, stranger, sequence, workspace
):
    enrollment = _sent(sequence, workspace)
    step = sequence.steps.get()
    client.force_login(stranger)
    for name, args in [
        ("leads:sequence_detail", [sequence.pk]),
        ("leads:sequence_edit", [sequence.pk]),
        ("leads:sequence_step_edit", [sequence.pk, step.pk]),
    ]:
        assert client.get(reverse(name, args=args)).status_code == 404
    for name, args in [
        ("leads:sequence_step_add", [sequence.pk]),
        ("leads:sequence_step_delete", [sequence.pk, step.pk]),
        ("leads:sequence_edit", [sequence.pk]),
    ]:
        response = client.post(
            reverse(name, args=args),
            {"name": "x", "trigger": "manual", "subject": "x", "body": "x"},
        )
        assert response.status_code == 404
    assert sequence.steps.get().subject == "Hi {{ first_name }}"
    assert "Win back" not in client.get(reverse("leads:sequences")).content.decode()
    # The enrolment's unsubscribe token means nothing on the stranger's host.
    other = stranger.memberships.get().workspace
    response = Client(HTTP_HOST=public_host(other)).post(
        f"/_seq/u/{enrollment.public_id}/"
    )
    assert response.status_code == 404


def test_viewer_cannot_change_a_sequence(client, viewer, sequence):
    client.force_login(viewer)
    assert (
        client.get(reverse("leads:sequence_detail", args=[sequence.pk])).status_code
        == 200
    )
    response = client.post(
        reverse("leads:sequence_step_add", args=[sequence.pk]),
        {"delay": "0", "unit": "days", "subject": "x", "body": "x"},
    )
    assert response.status_code == 403
    assert sequence.steps.count() == 1


def test_start_a_sequence_for_a_dropped_cohort(
    owner_client,
    workspace,
    leak,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    """The cohort page offers the workspace's sequences; starting one enrols its
    leads, sends the first e-mail and counts them as "who dropped at …"."""
    funnel, s = leak
    sequence = seq.sequence_save(workspace=workspace, name="Revive", funnel=funnel)
    seq.sequence_step_save(
        sequence=sequence,
        subject="Still thinking?",
        body="{{ funnel_url }}",
        delay_minutes=0,
    )
    page = owner_client.get(
        f"{reverse('leads:dropped')}?funnel={funnel.pk}&step={s['order'].pk}&{PERIOD}"
    ).content.decode()
    assert "Start a sequence for these 2 leads" in page
    assert f'<option value="{sequence.pk}">Revive</option>' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            reverse("leads:dropped_sequence"),
            {
                "funnel": funnel.pk,
                "step": s["order"].pk,
                "range": "custom",
                "date_from": "2026-03-01",
                "date_to": "2026-03-31",
                "sequence": sequence.pk,
            },
        )
    assert response["Location"] == reverse("leads:sequence_detail", args=[sequence.pk])
    assert sorted(m.to[0] for m in mail.outbox) == [
        "ann@example.test",
        "bob@example.test",
    ]
    ann = Lead.objects.get(email="ann@example.test")
    Order.objects.create(
        workspace=workspace,
        lead=ann,
        funnel=funnel,
        currency="USD",
        status="paid",
        paid_minor=28200,
        gateway="test",
        paid_at=timezone.now(),
    )
    html = owner_client.get(response["Location"]).content.decode()
    assert (
        'id="revival">Of 2 who dropped at order, 1 came back, 1 bought, $282.00.'
        in html
    )
    # The people behind it: Ann came back and bought, Bob did neither.
    table = html.split('id="people-h"')[1].split("</table>")[0]
    rows = [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)
        ]
        for tr in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    ]
    rows = [(r[0], r[2], r[3], r[4], r[5], r[6]) for r in rows]
    assert sorted(rows) == [
        ("ann@example.test", "Completed", "1", "—", "Yes", "Yes"),
        ("bob@example.test", "Completed", "1", "—", "—", "—"),
    ]


def test_a_strangers_sequence_cannot_be_started_on_my_cohort(
    owner_client,
    other_workspace,
    leak,  # noqa: F811
):
    funnel, s = leak
    theirs = seq.sequence_save(workspace=other_workspace, name="Theirs")
    owner_client.post(
        reverse("leads:dropped_sequence"),
        {"funnel": funnel.pk, "step": s["order"].pk, "sequence": theirs.pk},
    )
    assert not SequenceEnrollment.objects.exists()


def test_one_click_unsubscribe_rfc_8058(sequence, workspace):
    """GET shows a confirm page (and changes nothing: link scanners fetch it);
    the mail client's POST, without cookie or CSRF token, unsubscribes."""
    enrollment = _sent(sequence, workspace)
    visitor = Client(HTTP_HOST=public_host(workspace), enforce_csrf_checks=True)
    url = f"/_seq/u/{enrollment.public_id}/"
    page = visitor.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Unsubscribe?" in html and '<form method="post">' in html
    assert "<script" not in html
    enrollment.lead.refresh_from_db()
    assert enrollment.lead.unsubscribed_at is None
    response = visitor.post(
        url,
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    enrollment.lead.refresh_from_db()
    assert enrollment.lead.unsubscribed_at is not None
    again = seq.sequence_save(workspace=workspace, name="Again")
    assert (
        seq.sequence_enroll(sequence=again, lead_ids=[enrollment.lead_id], source="m")
        == 0
    )
    # Not on the app host.
    assert Client().post(url).status_code == 404


def test_pixel_and_click_redirect(sequence, workspace, other_workspace, funnel):
    enrollment = _sent(sequence, workspace)
    send = SequenceSend.objects.get(enrollment=enrollment)
    visitor = Client(HTTP_HOST=public_host(workspace))
    pixel = visitor.get(f"/_seq/o/{send.public_id}.gif")
    assert pixel["Content-Type"] == "image/gif" and pixel.content.startswith(b"GIF89a")
    response = visitor.get(f"/_seq/c/{send.public_id}/0/")
    assert response.status_code == 302
    assert response["Location"] == funnel.public_url()
    assert visitor.get(f"/_seq/c/{send.public_id}/1/").status_code == 404
    stranger_host = Client(HTTP_HOST=public_host(other_workspace))
    assert stranger_host.get(f"/_seq/c/{send.public_id}/0/").status_code == 404
    send.refresh_from_db()
    assert send.clicks == 1 and send.opened_at and send.clicked_at


def test_the_lead_page_shows_sequences_and_the_unsubscribe(
    owner_client, sequence, workspace
):
    enrollment = _sent(sequence, workspace)
    seq.lead_unsubscribe(
        enrollment_public_id=str(enrollment.public_id), workspace_id=workspace.pk
    )
    html = owner_client.get(
        reverse("leads:detail", args=[enrollment.lead_id])
    ).content.decode()
    assert "Unsubscribed</span> from sequence e-mail" in html
    assert f'<a href="/sequences/{sequence.pk}/">Win back</a>' in html
    assert "Completed" in html


def test_the_data_access_export_has_the_sequence_emails(
    owner_client, sequence, workspace
):
    enrollment = _sent(sequence, workspace)
    data = owner_client.get(
        reverse("leads:export_json", args=[enrollment.lead_id])
    ).json()
    assert data["unsubscribed_at"] is None
    [entry] = data["sequences"]
    assert (entry["sequence"], entry["status"]) == ("Win back", "completed")
    assert [(m["subject"], m["status"]) for m in entry["emails"]] == [
        ("Hi {{ first_name }}", "sent")
    ]
