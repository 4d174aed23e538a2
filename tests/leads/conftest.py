from __future__ import annotations

import pytest
from django.utils import timezone

from tests.factories import FunnelFactory, StepFactory


@pytest.fixture
def funnel(workspace):
    return FunnelFactory(
        workspace=workspace, name="Guide", slug="guide", published_at=timezone.now()
    )


@pytest.fixture
def optin_step(funnel):
    return StepFactory(funnel=funnel, name="Opt-in", slug="optin", position=0)


@pytest.fixture
def thanks_step(funnel):
    return StepFactory(
        funnel=funnel, name="Thanks", slug="thanks", kind="thankyou", position=1
    )


@pytest.fixture
def visitor(public_client, workspace):
    """A visitor's browser on the workspace's public host, where its funnels and
    their form endpoints live (the app host answers 404 for them)."""
    return public_client(workspace)
