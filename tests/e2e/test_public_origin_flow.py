"""Head code one workspace publishes cannot reach another workspace's admin.

Workspace Globex publishes a funnel whose head code tries, with the visitor's
cookies, to read Acme's lead export, to frame Acme's settings and to invite
itself into Acme. Acme's owner, logged in to the admin, opens that page: every
attempt fails, because the page runs on Globex's own origin
(globex.localhost:<port>) and its Content-Security-Policy allows nothing from
the admin's host.
"""

from __future__ import annotations

import pytest

from accounts.models import Invitation, Membership
from pages.models import Page
from pages.services import funnel_create_from_template, funnel_publish
from tests.e2e.conftest import log_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

ATTACK = """<script>
window.__attempts = {};
var admin = "%(admin)s";
fetch(admin + "/leads/export.csv", {credentials: "include"})
  .then(function (r) { return r.text(); })
  .then(function (t) { window.__attempts.read = "read:" + t.slice(0, 40); })
  .catch(function () { window.__attempts.read = "blocked"; });
var body = new URLSearchParams({email: "mallory@globex.test", role: "owner"});
fetch(admin + "/settings/members/", {method: "POST", credentials: "include",
  mode: "no-cors", body: body})
  .then(function () { window.__attempts.invite = "sent"; })
  .catch(function () { window.__attempts.invite = "blocked"; });
var frame = document.createElement("iframe");
frame.src = admin + "/settings/members/";
frame.onload = function () {
  try { window.__attempts.frame = "read:" + frame.contentDocument.title; }
  catch (e) { window.__attempts.frame = "blocked"; }
};
document.documentElement.appendChild(frame);
setTimeout(function () {
  if (!window.__attempts.frame) window.__attempts.frame = "blocked";
}, 1500);
</script>"""


def test_head_code_of_another_workspace_cannot_reach_the_admin(
    live_server,
    public_url,
    page,
    new_page,
    owner,
    workspace,
    other_workspace,
    screenshot,
):
    mallory = UserFactory(email="mallory@globex.test")
    MembershipFactory(user=mallory, workspace=other_workspace, role="owner")
    funnel = funnel_create_from_template(
        workspace=other_workspace, user=mallory, template_key="lead-magnet", name="Bait"
    )
    first = funnel.steps.order_by("position").first()
    Page.objects.filter(step=first).update(
        head_code=ATTACK % {"admin": live_server.url}
    )
    funnel_publish(funnel=funnel, user=mallory)

    log_in(page, live_server, owner.email)
    # The admin's host serves no funnel page, not even Globex's.
    assert page.goto(live_server.url + f"/{funnel.slug}/").status == 404

    bait = public_url(other_workspace, f"/{funnel.slug}/")
    response = page.goto(bait)
    assert response.status == 200
    assert page.url.startswith(f"http://{other_workspace.slug}.localhost:")
    page.wait_for_function(
        "() => window.__attempts && ['read', 'invite', 'frame']"
        ".every(k => window.__attempts[k])",
        timeout=15_000,
    )
    attempts = page.evaluate("window.__attempts")
    screenshot(page, "public-origin-bait-page")
    assert attempts["read"] == "blocked"
    assert attempts["frame"] == "blocked"
    assert not Invitation.objects.filter(workspace=workspace).exists()
    assert not Membership.objects.filter(workspace=workspace, user=mallory).exists()
    policy = response.headers["content-security-policy"]
    assert live_server.url.split("//")[1] not in policy

    # The owner is still logged in to the admin, on its own origin, untouched.
    page.goto(live_server.url + "/settings/members/")
    assert page.get_by_role("heading", name="Members").first.is_visible()
