"""Every URL in the project is covered by a tenancy rule, or this test fails.

Each named URL must be in exactly one of:

* ``OBJECT_URLS``: it takes the id of a workspace-owned object. A stranger (member of
  another workspace) gets 404 on GET and POST, and a viewer of the owning workspace
  gets 403 on POST (unless listed in ``SELF_SERVICE``).
* ``WORKSPACE_URLS``: a workspace-scoped page without an object id. A viewer gets 403
  on POST (unless listed in ``SELF_SERVICE``).
* ``PUBLIC_URLS``: anonymous or account-level pages (login, sign-up, health...).

A new URL that is in none of them makes ``test_every_url_is_classified`` fail, so
whoever adds it has to say how it is protected.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import Invitation, Membership
from funnels import services as funnel_services
from tests.factories import FunnelFactory, UserFactory

pytestmark = pytest.mark.django_db

Builder = Callable[[dict], dict]

# URL name -> kwargs built from the owning workspace's objects.
OBJECT_URLS: dict[str, Builder] = {
    "accounts:member_role": lambda o: {"pk": o["membership"].pk},
    "accounts:member_remove": lambda o: {"pk": o["membership"].pk},
    "accounts:invitation_revoke": lambda o: {"pk": o["invitation"].pk},
    "funnels:detail": lambda o: {"pk": o["funnel"].pk},
    "funnels:update": lambda o: {"pk": o["funnel"].pk},
    "funnels:duplicate": lambda o: {"pk": o["funnel"].pk},
    "funnels:archive": lambda o: {"pk": o["funnel"].pk},
    "funnels:unarchive": lambda o: {"pk": o["funnel"].pk},
    "funnels:delete": lambda o: {"pk": o["funnel"].pk},
    "funnels:step_create": lambda o: {"pk": o["funnel"].pk},
    "funnels:step_reorder": lambda o: {"pk": o["funnel"].pk},
    "funnels:step_update": lambda o: {"pk": o["funnel"].pk, "step_pk": o["step"].pk},
    "funnels:step_move": lambda o: {"pk": o["funnel"].pk, "step_pk": o["step"].pk},
    "funnels:step_delete": lambda o: {"pk": o["funnel"].pk, "step_pk": o["step"].pk},
}

WORKSPACE_URLS: set[str] = {
    "funnels:home",
    "funnels:list",
    "funnels:create",
    "accounts:settings",
    "accounts:members",
    "leads:list",
    "analytics:overview",
}

# Anonymous pages, or pages about the user's own account rather than a workspace.
PUBLIC_URLS: set[str] = {
    "healthz",
    "accounts:signup",
    "accounts:login",
    "accounts:logout",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
    "accounts:workspace_create",
    # Switching only ever picks one of the user's own memberships (404 otherwise).
    "accounts:workspace_switch",
    "accounts:invite_accept",
}

# Writes that a viewer may do on purpose, whatever object id they name. (A viewer may
# leave a workspace through accounts:member_remove with their *own* membership; the
# registry builds it with another member's id, which stays 403.) Logout and workspace
# switching are account-level and listed in PUBLIC_URLS.
SELF_SERVICE: set[str] = set()


def _names(resolver: URLResolver, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue  # Django admin: staff only, guarded by its own login.
            ns = f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            names |= _names(entry, ns)
        elif isinstance(entry, URLPattern):
            if entry.name is None:
                # Unnamed patterns (static/media in DEBUG) are not views of ours.
                continue
            names.add(prefix + entry.name)
    return names


def _objects(workspace):
    funnel = FunnelFactory(workspace=workspace)
    step = funnel_services.step_create(funnel=funnel, kind="optin", name="Join")
    other = UserFactory()
    membership = Membership.objects.create(
        user=other, workspace=workspace, role="editor"
    )
    invitation = Invitation.objects.create(
        workspace=workspace,
        email="new@example.test",
        expires_at=timezone.now() + timedelta(days=7),
    )
    return {
        "funnel": funnel,
        "step": step,
        "membership": membership,
        "invitation": invitation,
    }


def test_every_url_is_classified():
    """Every named URL is in the object, workspace or public registry (only one)."""
    names = _names(get_resolver())
    registered = [set(OBJECT_URLS), WORKSPACE_URLS, PUBLIC_URLS]
    covered = set().union(*registered)
    assert sorted(names - covered) == [], "Add these URLs to tests/test_tenancy.py"
    assert sorted(covered - names) == [], "These registry entries no longer exist"
    assert sum(len(r) for r in registered) == len(covered), "URL listed twice"


@pytest.mark.parametrize("name", sorted(OBJECT_URLS))
def test_stranger_gets_404_on_object_urls(client, workspace, stranger, name):
    """A member of another workspace gets 404 on every URL with our object's id."""
    url = reverse(name, kwargs=OBJECT_URLS[name](_objects(workspace)))
    client.force_login(stranger)
    assert client.get(url).status_code in (404, 405), url
    assert client.post(url).status_code == 404, url


@pytest.mark.parametrize("name", sorted(set(OBJECT_URLS) - SELF_SERVICE))
def test_viewer_gets_403_on_object_writes(client, workspace, viewer, name):
    """A viewer of the owning workspace gets 403 on every POST to an object URL."""
    url = reverse(name, kwargs=OBJECT_URLS[name](_objects(workspace)))
    client.force_login(viewer)
    assert client.post(url).status_code == 403, url


@pytest.mark.parametrize("name", sorted(WORKSPACE_URLS - SELF_SERVICE))
def test_viewer_gets_403_on_workspace_writes(client, viewer, name):
    """A viewer gets 403 on every POST to a workspace-scoped page."""
    client.force_login(viewer)
    assert client.post(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", sorted(WORKSPACE_URLS))
def test_anonymous_is_sent_to_login(client, name):
    """Workspace pages send an anonymous visitor to the login page."""
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
