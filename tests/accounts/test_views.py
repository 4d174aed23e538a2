from __future__ import annotations

import re
from datetime import timedelta

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


def _signup_link(outbox) -> str:
    body = outbox[-1].body
    return next(line for line in body.splitlines() if "/signup/" in line).split(
        "testserver", 1
    )[1]


def test_signup_emails_a_link_that_creates_user_workspace_and_owner(client):
    """Sign-up e-mails a link; choosing a password there creates the user and their
    workspace, makes them owner and logs them in. Nothing exists before."""
    response = client.post(
        reverse("accounts:signup"),
        {
            "full_name": "Ada Lovelace",
            "email": "Ada@Example.com",
            "workspace_name": "Analytical Engines",
        },
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:signup_sent")
    assert "Check your e-mail" in client.get(response["Location"]).content.decode()
    assert User.objects.count() == 0
    assert mail.outbox[0].to == ["ada@example.com"]
    assert mail.outbox[0].subject == "Finish creating your OpenFunnels account"
    link = _signup_link(mail.outbox)
    form = client.get(link)
    assert form.status_code == 200
    assert "ada@example.com" in form.content.decode()
    response = client.post(link, {"password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("funnels:list")
    user = User.objects.get()
    assert (user.email, user.full_name) == ("ada@example.com", "Ada Lovelace")
    membership = Membership.objects.get(user=user)
    assert membership.role == "owner"
    assert membership.workspace.name == "Analytical Engines"
    page = client.get(reverse("funnels:list"))
    assert b"No funnels yet" in page.content
    assert b"Analytical Engines" in page.content
    # The link has done its work: using it again leads to log in.
    again = client.get(link)
    assert again.status_code == 302


def test_signup_does_not_reveal_whether_an_email_has_an_account(client, owner):
    """An address with an account gets the same answer as a new one; the owner of
    the address is told by e-mail, and nothing is created."""
    answers = [
        client.post(
            reverse("accounts:signup"),
            {"email": email, "workspace_name": "X"},
            follow=True,
        )
        for email in ("OWNER@acme.test", "nobody@acme.test")
    ]
    assert [a.redirect_chain for a in answers] == [
        [(reverse("accounts:signup_sent"), 302)]
    ] * 2
    pages = [re.sub(r'"X-CSRFToken": "[^"]+"', "", a.content.decode()) for a in answers]
    assert pages[0] == pages[1]
    existing, new = mail.outbox
    assert existing.to == ["owner@acme.test"]
    assert existing.subject == "You already have an OpenFunnels account"
    assert "/login/" in existing.body and "/password-reset/" in existing.body
    assert "/signup/" not in existing.body
    assert new.subject == "Finish creating your OpenFunnels account"
    assert User.objects.count() == 1
    assert Workspace.objects.filter(name="X").count() == 0


def test_signup_weak_password_is_refused_and_nothing_created(client):
    """A weak password is refused with the reason; no user or workspace is left."""
    client.post(
        reverse("accounts:signup"),
        {"email": "new@example.com", "workspace_name": "W"},
    )
    response = client.post(_signup_link(mail.outbox), {"password": "password"})
    assert response.status_code == 422
    body = response.content.decode()
    assert "This password is too short" in body
    assert "This password is too common" in body
    assert User.objects.count() == 0
    assert Workspace.objects.count() == 0


def test_forged_or_expired_signup_link_is_refused(client, settings):
    """A tampered link or one older than SIGNUP_LINK_MAX_AGE creates nothing."""
    client.post(reverse("accounts:signup"), {"email": "late@example.com"})
    link = _signup_link(mail.outbox)
    forged = client.post(link[:-3] + "xx/", {"password": PASSWORD})
    assert forged.status_code == 410
    assert "This sign-up link is not valid" in forged.content.decode()
    settings.SIGNUP_LINK_MAX_AGE = timedelta(seconds=-1)
    expired = client.post(link, {"password": PASSWORD})
    assert expired.status_code == 410
    assert "This sign-up link has expired" in expired.content.decode()
    assert User.objects.count() == 0


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
