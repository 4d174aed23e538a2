from __future__ import annotations

import re

import pytest
from django.core import mail

from accounts.models import Membership

pytestmark = pytest.mark.django_db(transaction=True)


def test_signup_invite_and_accept(live_server, new_page, screenshot):
    """A new user signs up by e-mail, lands on funnels, invites a member who
    accepts and joins."""
    owner = new_page()
    owner.goto(live_server.url + "/")
    screenshot(owner, "login")
    owner.get_by_role("link", name="Create an account").click()
    owner.get_by_label("Your name").fill("Olivia Owner")
    owner.get_by_label("Work e-mail").fill("olivia@example.com")
    owner.get_by_label("Company or workspace name").fill("Olivia Media")
    owner.get_by_role("button", name="Create account").click()
    owner.get_by_role("heading", name="Check your e-mail").wait_for()
    screenshot(owner, "signup-sent")
    assert len(mail.outbox) == 1
    confirm = re.search(r"https?://\S+/signup/\S+/", mail.outbox[0].body).group(0)
    owner.goto(live_server.url + "/signup/" + confirm.split("/signup/", 1)[1])
    owner.get_by_label("Choose a password").fill("a-long-secret-phrase")
    owner.get_by_role("button", name="Finish sign-up").click()
    owner.get_by_role("heading", name="No funnels yet").wait_for()
    assert "Welcome to OpenFunnels, Olivia Owner!" in owner.content()
    screenshot(owner, "funnels-empty")

    owner.get_by_role("link", name="Settings").click()
    owner.get_by_role("link", name="Members").click()
    owner.get_by_label("E-mail").fill("mark@example.com")
    owner.get_by_label("Role").select_option("editor")
    owner.get_by_role("button", name="Send invitation").click()
    owner.get_by_text("Invitation sent to mark@example.com.").wait_for()
    screenshot(owner, "members")

    assert len(mail.outbox) == 2
    link = re.search(r"https?://\S+/invite/\S+/", mail.outbox[1].body).group(0)
    path = "/invite/" + link.split("/invite/", 1)[1]

    member = new_page()
    member.goto(live_server.url + path)
    member.get_by_role("heading", name="Join Olivia Media").wait_for()
    member.get_by_label("Your name").fill("Mark Member")
    member.get_by_label("Choose a password").fill("another-long-phrase")
    member.get_by_role("button", name="Create account and join").click()
    member.get_by_text("You joined Olivia Media.").wait_for()
    assert member.locator(".ws-name").inner_text() == "Olivia Media"
    membership = Membership.objects.get(user__email="mark@example.com")
    assert membership.role == "editor"
    assert membership.workspace.name == "Olivia Media"
