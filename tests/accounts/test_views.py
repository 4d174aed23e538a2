from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from accounts.models import Invitation, Membership, User, Workspace
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def test_root_redirects_anonymous_visitor_to_login(client):
    """An anonymous visitor of / is sent to the login page."""
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/"
    page = client.get(response["Location"])
    assert page.status_code == 200
    assert b"Welcome back" in page.content


def test_signup_creates_user_workspace_and_owner_membership(client):
    """Sign-up creates the user, their workspace, makes them owner and logs them in."""
    response = client.post(
        reverse("accounts:signup"),
        {
            "full_name": "Ada Lovelace",
            "email": "Ada@Example.com",
            "password": PASSWORD,
            "workspace_name": "Analytical Engines",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("funnels:list")
    user = User.objects.get()
    assert user.email == "ada@example.com"
    membership = Membership.objects.get(user=user)
    assert membership.role == "owner"
    assert membership.workspace.name == "Analytical Engines"
    page = client.get(reverse("funnels:list"))
    assert b"No funnels yet" in page.content
    assert b"Analytical Engines" in page.content


def test_signup_duplicate_email_is_refused_and_nothing_created(client, owner):
    """A duplicate e-mail (any case) gets a clear message; nothing is created."""
    response = client.post(
        reverse("accounts:signup"),
        {"email": "OWNER@acme.test", "password": PASSWORD, "workspace_name": "X"},
    )
    assert response.status_code == 200
    assert "An account with this e-mail already exists" in response.content.decode()
    assert User.objects.count() == 1
    assert Workspace.objects.filter(name="X").count() == 0


def test_signup_weak_password_is_refused_and_nothing_created(client):
    """A weak password is refused with the reason; no user or workspace is left."""
    response = client.post(
        reverse("accounts:signup"),
        {"email": "new@example.com", "password": "password", "workspace_name": "W"},
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert "This password is too short" in body
    assert "This password is too common" in body
    assert User.objects.count() == 0
    assert Workspace.objects.count() == 0
    assert 'value="new@example.com"' in body


def test_login_wrong_password_shows_message(client, owner):
    """A wrong password gets a clear message on the same page."""
    response = client.post(
        reverse("accounts:login"), {"username": owner.email, "password": "nope"}
    )
    assert response.status_code == 200
    assert "That e-mail and password do not match an account." in (
        response.content.decode()
    )


def test_login_and_logout(client, owner):
    """The right password logs in; log out ends the session."""
    response = client.post(
        reverse("accounts:login"), {"username": owner.email, "password": PASSWORD}
    )
    assert response.status_code == 302
    assert client.get(reverse("funnels:list")).status_code == 200
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("funnels:list")).status_code == 302


def test_password_reset_sends_link_that_sets_new_password(client, owner):
    """Password reset e-mails a link; following it sets a new password."""
    client.post(reverse("accounts:password_reset"), {"email": owner.email})
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    link = next(line for line in body.splitlines() if "/reset/" in line)
    path = link.split("testserver", 1)[1].strip()
    form = client.get(path, follow=True)
    assert form.status_code == 200
    confirm_url = form.redirect_chain[-1][0]
    done = client.post(
        confirm_url,
        {"new_password1": "brand-new-pass-42", "new_password2": "brand-new-pass-42"},
    )
    assert done.status_code == 302
    owner.refresh_from_db()
    assert owner.check_password("brand-new-pass-42")


def test_invite_sends_email_and_new_person_accepts(
    client, owner, django_capture_on_commit_callbacks
):
    """An owner invites by e-mail; the invitee signs up from the link and joins."""
    client.force_login(owner)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("accounts:members"), {"email": "new@acme.test", "role": "viewer"}
        )
    assert response.status_code == 302
    invitation = Invitation.objects.get()
    assert invitation.sent_at is not None
    assert len(mail.outbox) == 1
    assert invitation.token in mail.outbox[0].body
    client.logout()

    url = reverse("accounts:invite_accept", args=[invitation.token])
    response = client.post(url, {"full_name": "Newbie", "password": PASSWORD})
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="new@acme.test")
    assert membership.workspace == owner.memberships.get().workspace
    assert membership.role == "viewer"

    reused = client.get(url)
    assert reused.status_code == 410
    assert "already been used" in reused.content.decode()


def test_expired_invitation_is_refused(client, owner):
    """An expired invite shows a clear message and creates nothing."""
    client.force_login(owner)
    client.post(
        reverse("accounts:members"), {"email": "late@acme.test", "role": "editor"}
    )
    invitation = Invitation.objects.get()
    Invitation.objects.filter(pk=invitation.pk).update(expires_at="2000-01-01T00:00Z")
    client.logout()
    url = reverse("accounts:invite_accept", args=[invitation.token])
    response = client.post(url, {"password": PASSWORD})
    assert response.status_code == 410
    assert "This invitation has expired" in response.content.decode()
    assert not User.objects.filter(email="late@acme.test").exists()


def test_invitation_for_someone_else_is_refused(client, owner, stranger):
    """Logged in as another address, accepting an invitation is refused."""
    client.force_login(owner)
    client.post(reverse("accounts:members"), {"email": "x@acme.test", "role": "editor"})
    invitation = Invitation.objects.get()
    client.force_login(stranger)
    url = reverse("accounts:invite_accept", args=[invitation.token])
    response = client.post(url, follow=True)
    assert "This invitation was sent to x@acme.test" in response.content.decode()
    assert not Membership.objects.filter(
        user=stranger, workspace=invitation.workspace
    ).exists()


def test_viewer_cannot_invite(client, viewer):
    """A viewer trying to invite gets 403 and no invitation exists."""
    client.force_login(viewer)
    response = client.post(
        reverse("accounts:members"), {"email": "a@b.test", "role": "editor"}
    )
    assert response.status_code == 403
    assert Invitation.objects.count() == 0


def test_switch_workspace(client, owner, stranger, other_workspace):
    """A member of two workspaces switches between them; not into a foreign one."""
    third = Workspace.objects.create(name="Third Co")
    Membership.objects.create(user=owner, workspace=third, role="editor")
    client.force_login(owner)
    client.post(reverse("accounts:workspace_switch", args=[third.public_id]))
    assert b"Third Co" in client.get(reverse("funnels:list")).content
    response = client.post(
        reverse("accounts:workspace_switch", args=[other_workspace.public_id])
    )
    assert response.status_code == 404


def test_last_owner_cannot_leave(client, owner):
    """The only owner cannot leave or be demoted: a workspace keeps an owner."""
    client.force_login(owner)
    membership = owner.memberships.get()
    response = client.post(
        reverse("accounts:member_remove", args=[membership.pk]), follow=True
    )
    assert "A workspace needs at least one owner." in response.content.decode()
    assert Membership.objects.filter(pk=membership.pk).exists()
