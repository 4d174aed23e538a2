"""The audit log: written in the change's transaction by the services, append-only,
kept for the workspace's retention; Settings → Audit log for owners and admins."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.actors import Actor, acting_as
from accounts.models import AuditEntry, Membership, Workspace
from accounts.tasks import audit_purge_task
from funnels.services import funnel_delete
from leads.models import Lead
from leads.services import lead_erase
from pages.services import domain_add, domain_delete, funnel_create_from_template
from tests.factories import FunnelFactory

pytestmark = pytest.mark.django_db


def actions(workspace) -> list[str]:
    return list(
        AuditEntry.objects.filter(workspace=workspace)
        .order_by("id")
        .values_list("action", flat=True)
    )


def test_member_changes_are_audited_with_who_and_where(
    owner_client, owner, member, workspace
):
    """Role change, invitation and removal, by the owner, from the request's IP,
    with a compact before/after."""
    target = Membership.objects.get(user=member)
    owner_client.post(
        reverse("accounts:member_role", args=[target.pk]),
        {"role": "viewer"},
        REMOTE_ADDR="203.0.113.9",
    )
    owner_client.post(
        reverse("accounts:members"), {"email": "new@acme.test", "role": "editor"}
    )
    owner_client.post(reverse("accounts:member_remove", args=[target.pk]))
    assert actions(workspace) == ["member.role", "member.invite", "member.remove"]
    role = AuditEntry.objects.get(action="member.role")
    assert (role.actor_user, role.actor_label, role.ip_address) == (
        owner,
        "owner@acme.test",
        "203.0.113.9",
    )
    assert role.target_label == "editor@acme.test"
    assert role.changes == {"before": {"role": "editor"}, "after": {"role": "viewer"}}


def test_settings_change_keeps_only_what_changed(owner_client, workspace):
    owner_client.post(
        reverse("accounts:settings"),
        {
            "name": "Acme Inc",
            "slug": workspace.slug,
            "timezone": "UTC",
            "event_retention_days": 395,
        },
    )
    entry = AuditEntry.objects.get(workspace=workspace, action="settings.update")
    assert entry.changes == {
        "before": {"name": "Acme"},
        "after": {"name": "Acme Inc"},
    }


def test_entry_is_part_of_the_change_transaction(owner, workspace):
    """If the change rolls back, so does its entry; an entry needs a transaction."""
    funnel = FunnelFactory(workspace=workspace, name="Temp")
    with pytest.raises(RuntimeError), transaction.atomic():
        funnel_delete(funnel=funnel, confirm_name="Temp")
        raise RuntimeError("boom")
    assert not AuditEntry.objects.filter(action="funnel.delete").exists()


@pytest.mark.django_db(transaction=True)
def test_entry_outside_a_transaction_is_refused(workspace):
    with pytest.raises(RuntimeError, match="must run in the transaction"):
        services.audit_record(workspace=workspace, action="x")
    assert not AuditEntry.objects.exists()


def test_domain_funnel_and_lead_actions(workspace):
    with acting_as(Actor(label="test")):
        funnel = funnel_create_from_template(
            workspace=workspace, user=None, template_key="lead-magnet", name="Guide"
        )
        domain = domain_add(workspace=workspace, host="shop.example.com", funnel=funnel)
        domain_delete(domain=domain)
        lead = Lead.objects.create(workspace=workspace, email="x@example.com")
        lead_erase(lead=lead)
        funnel_delete(funnel=funnel, confirm_name="Guide")
    assert actions(workspace) == [
        "domain.add",
        "domain.delete",
        "lead.erase",
        "funnel.delete",
    ]
    erase = AuditEntry.objects.get(action="lead.erase")
    assert "x@example.com" not in str(erase.target_label) + str(erase.changes)


def test_the_log_is_append_only(workspace):
    with acting_as(Actor(label="test")), transaction.atomic():
        entry = services.audit_record(workspace=workspace, action="settings.update")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action="nothing")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    assert AuditEntry.objects.get(pk=entry.pk).action == "settings.update"


def test_deleting_a_workspace_takes_its_log_and_nothing_else(
    workspace, other_workspace
):
    """A workspace with an audit log can be deleted (the log goes with it, through
    workspace_delete); another workspace's entries stay, and a plain delete of the
    workspace is still refused by the log."""
    with acting_as(Actor(label="test")), transaction.atomic():
        services.audit_record(workspace=workspace, action="settings.update")
        services.audit_record(workspace=other_workspace, action="settings.update")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        workspace.delete()
    services.workspace_delete(workspace=workspace)
    assert not Workspace.objects.filter(pk=workspace.pk).exists()
    assert actions(other_workspace) == ["settings.update"]
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(workspace=other_workspace).delete()


def test_retention_purge(workspace, other_workspace):
    """Each workspace keeps its entries for its own retention, then they go."""
    old = timezone.now() - timedelta(days=40)
    for ws in (workspace, other_workspace):
        AuditEntry.objects.create(
            workspace=ws, actor_label="x", action="old", created_at=old
        )
        AuditEntry.objects.create(workspace=ws, actor_label="x", action="new")
    workspace.audit_retention_days = 30
    workspace.save()
    other_workspace.audit_retention_days = 60
    other_workspace.save()
    assert audit_purge_task() == 1
    assert actions(workspace) == ["new"]
    assert actions(other_workspace) == ["old", "new"]
    assert audit_purge_task() == 0


def test_audit_log_page_filters_pages_and_exports(owner_client, owner, workspace):
    with acting_as(Actor(label="owner@acme.test", user=owner)), transaction.atomic():
        for i in range(55):
            services.audit_record(
                workspace=workspace,
                action="webhook.create",
                target_label=f"https://hooks.example/{i}",
            )
        services.audit_record(
            workspace=workspace, action="=cmd()", target_label="-danger"
        )
    url = reverse("accounts:audit_log")
    first = owner_client.get(url)
    assert first.status_code == 200
    assert len(first.context["page"].entries) == 50
    cursor = first.context["page"].next_cursor
    second = owner_client.get(url, {"cursor": cursor})
    assert len(second.context["page"].entries) == 6
    filtered = owner_client.get(url, {"action": "webhook.create", "q": "/54"})
    assert [e.target_label for e in filtered.context["page"].entries] == [
        "https://hooks.example/54"
    ]
    mine = owner_client.get(url, {"actor": f"user:{owner.pk}"})
    assert len(mine.context["page"].entries) == 50
    bad = owner_client.get(url, {"date_from": "2026-05-02", "date_to": "2026-05-01"})
    assert "The end date is before the start date." in bad.content.decode()
    response = owner_client.get(reverse("accounts:audit_export"))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["When", "Who", "IP", "Action", "Type", "Id", "Object", "Changes"]
    assert len(rows) == 57
    assert rows[1][3:7] == ["'=cmd()", "", "", "'-danger"]


def test_retention_setting(owner_client, workspace):
    url = reverse("accounts:audit_log")
    response = owner_client.post(url, {"audit_retention_days": 10})
    assert response.status_code == 422
    owner_client.post(url, {"audit_retention_days": 90})
    workspace.refresh_from_db()
    assert workspace.audit_retention_days == 90
    entry = AuditEntry.objects.get(action="settings.update")
    assert entry.changes == {
        "before": {"audit_retention_days": 365},
        "after": {"audit_retention_days": 90},
    }


@pytest.mark.parametrize("role_fixture", ["member", "viewer"])
def test_only_owners_and_admins_see_the_log(client, request, role_fixture, workspace):
    client.force_login(request.getfixturevalue(role_fixture))
    assert client.get(reverse("accounts:audit_log")).status_code == 403
    assert client.get(reverse("accounts:audit_export")).status_code == 403


def test_admin_sees_the_log_and_a_stranger_sees_only_theirs(
    client, admin_user, stranger, workspace
):
    with acting_as(Actor(label="test")), transaction.atomic():
        services.audit_record(workspace=workspace, action="ours")
    client.force_login(admin_user)
    assert "ours" in client.get(reverse("accounts:audit_log")).content.decode()
    client.force_login(stranger)
    assert "ours" not in client.get(reverse("accounts:audit_log")).content.decode()


def test_joining_by_invitation_is_the_new_members_act(client, owner, workspace):
    """Someone signing up through an invitation is named as who joined."""
    from accounts.models import Invitation

    invitation = Invitation.objects.create(
        workspace=workspace,
        email="newbie@acme.test",
        role="editor",
        invited_by=owner,
        expires_at=timezone.now() + timedelta(days=1),
    )
    client.post(
        reverse("accounts:invite_accept", args=[invitation.token]),
        {"full_name": "New Bie", "password": "a-long-secret-phrase"},
    )
    entry = AuditEntry.objects.get(workspace=workspace, action="member.join")
    assert entry.actor_label == "newbie@acme.test"
    assert entry.actor_user.email == "newbie@acme.test"
    assert entry.changes == {"after": {"role": "editor"}}


def test_product_delete_is_audited(owner_client, workspace):
    from tests.factories import ProductFactory

    product = ProductFactory(workspace=workspace, name="Old ebook", price_minor=900)
    owner_client.post(reverse("products:delete", args=[product.pk]))
    entry = AuditEntry.objects.get(workspace=workspace, action="product.delete")
    assert entry.target_label == "Old ebook"
    assert entry.changes == {"before": {"name": "Old ebook", "price_minor": 900}}
