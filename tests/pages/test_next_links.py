"""Published pages link "next" to the step funnels.paths names."""

from __future__ import annotations

import pytest

from pages import documents, services
from pages.models import PageVersion
from tests.funnels.test_paths import BRANCHED, _build

pytestmark = pytest.mark.django_db


def test_upsell_next_link_skips_the_decline_only_downsell(workspace):
    """A "next" button on the upsell goes to the thank-you, as a submit there does;
    before, the published page linked to the downsell that follows it by position."""
    funnel, s = _build(workspace, BRANCHED)
    doc = {"sections": [documents.new_section()]}
    column_id = doc["sections"][0]["rows"][0]["columns"][0]["id"]
    doc = documents.add_block(doc, documents.new_block("button"), column_id=column_id)
    services.page_create_blank(step=s["up"], document=doc)
    services.funnel_publish(funnel=funnel, user=None)
    html = PageVersion.objects.get(page__step=s["up"]).html
    assert f'href="{services.public_path(funnel, s["thanks"])}"' in html
    assert services.public_path(funnel, s["down"]) not in html
