from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.factories import MembershipFactory, UserFactory, WorkspaceFactory


@pytest.fixture(autouse=True)
def _clear_cache():
    """Each test starts with an empty cache (sessions, rate limits) in real Redis,
    and public serving forgets the hosts and pages earlier tests published."""
    from analytics import shipper
    from pages import serving

    cache.clear()
    serving.local_caches_clear()
    # Each test ships only the views it logged itself.
    shipper.view_log_reset()
    for path in shipper.log_files():
        path.unlink(missing_ok=True)
    yield


def public_host(workspace) -> str:
    """The Host header of a workspace's published funnels (PUBLIC_DOMAIN=localhost
    in tests; Python's resolver does not know *.localhost, so tests send it)."""
    return f"{workspace.slug}.localhost"


@pytest.fixture
def public_client(db):
    """``public_client(workspace)``: a test client on that workspace's public host."""
    from django.test import Client

    def make(workspace, **defaults):
        return Client(HTTP_HOST=public_host(workspace), **defaults)

    return make


@pytest.fixture(autouse=True)
def _media_root(tmp_path_factory):
    """Uploads (and template images copied into new funnels) go to a temporary
    folder, never into the checkout's .data/media. (Not through the ``settings``
    fixture: some tests name a parameter ``settings``.)"""
    from django.test import override_settings

    with override_settings(MEDIA_ROOT=tmp_path_factory.getbasetemp() / "media"):
        yield


@pytest.fixture(autouse=True)
def _no_events_left_behind(request):
    """The events table is not a Django-managed table, so a transactional test's
    flush does not empty it: do it here so tests never see each other's events."""
    yield
    marker = request.node.get_closest_marker("django_db")
    if marker and marker.kwargs.get("transaction"):
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM analytics_event")


@pytest.fixture
def workspace(db):
    return WorkspaceFactory(name="Acme")


@pytest.fixture
def other_workspace(db):
    return WorkspaceFactory(name="Globex")


def _member(workspace, role: str, email: str):
    user = UserFactory(email=email)
    MembershipFactory(user=user, workspace=workspace, role=role)
    return user


@pytest.fixture
def owner(workspace):
    return _member(workspace, "owner", "owner@acme.test")


@pytest.fixture
def admin_user(workspace):
    return _member(workspace, "admin", "admin@acme.test")


@pytest.fixture
def member(workspace):
    return _member(workspace, "editor", "editor@acme.test")


@pytest.fixture
def viewer(workspace):
    return _member(workspace, "viewer", "viewer@acme.test")


@pytest.fixture
def stranger(other_workspace):
    return _member(other_workspace, "owner", "stranger@globex.test")


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client
