"""Opt-in rate limits per client IP (TRUSTED_PROXIES) and workspace."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from funnels.public_forms import form_token_issue
from leads.models import Lead, Submission
from tests.factories import FunnelFactory, StepFactory

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.2"


def _optin(visitor, step, n: int, peer: str, xff: str | None = None):
    token = form_token_issue(step_id=step.pk, now=time.time() - 10)
    extra = {"REMOTE_ADDR": peer}
    if xff is not None:
        extra["HTTP_X_FORWARDED_FOR"] = xff
    return visitor.post(
        f"/{step.funnel.slug}/{step.slug}/optin/",
        {"email": f"visitor{n}@example.com", "_of": token},
        **extra,
    )


def _client_address(n: int) -> str:
    return f"198.51.{100 + n // 250}.{n % 250 + 1}"


def test_500_optins_from_500_clients_through_a_trusted_proxy_are_accepted(
    visitor, settings, optin_step, thanks_step
):
    """Behind a trusted proxy each visitor has their own limit: all 500 get in,
    and each submission records the visitor's address, not the proxy's."""
    settings.TRUSTED_PROXIES = [PROXY]
    codes = [
        _optin(visitor, optin_step, n, PROXY, f"{_client_address(n)}").status_code
        for n in range(500)
    ]
    assert codes == [302] * 500
    assert Lead.objects.count() == 500
    ips = set(Submission.objects.values_list("ip_address", flat=True))
    assert ips == {_client_address(n) for n in range(500)}


def test_500_optins_through_an_untrusted_peer_are_limited_by_the_peer(
    visitor, settings, optin_step, thanks_step
):
    """A peer that is not a trusted proxy is the client: its forwarded headers are
    ignored and its 20 posts per 10 minutes are all it gets."""
    settings.TRUSTED_PROXIES = []
    codes = [
        _optin(visitor, optin_step, n, PROXY, _client_address(n)).status_code
        for n in range(500)
    ]
    assert codes == [302] * 20 + [429] * 480
    assert Lead.objects.count() == 20
    assert set(Submission.objects.values_list("ip_address", flat=True)) == {PROXY}


def test_ip_limit_is_per_workspace(
    visitor, public_client, optin_step, thanks_step, other_workspace
):
    """One busy visitor on one workspace's funnel is not limited on another's."""
    other_funnel = FunnelFactory(
        workspace=other_workspace,
        slug="other",
        published_at=timezone.now(),
    )
    other_step = StepFactory(funnel=other_funnel, slug="join", position=0)
    StepFactory(funnel=other_funnel, slug="done", kind="thankyou", position=1)
    codes = [
        _optin(visitor, optin_step, n, "203.0.113.5").status_code for n in range(21)
    ]
    assert codes == [302] * 20 + [429]
    assert (
        _optin(
            public_client(other_workspace), other_step, 99, "203.0.113.5"
        ).status_code
        == 302
    )
