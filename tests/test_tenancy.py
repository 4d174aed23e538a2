"""Every URL is classified; strangers get 404 on others' objects, viewers 403 on writes.

Adding a URL pattern without classifying it here fails `test_every_url_is_classified`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import Invitation, Membership, Workspace
from leads.models import Lead, Order, Webhook, WebhookDelivery

pytestmark = pytest.mark.django_db

# Anonymous or staff-only endpoints: no workspace data behind them.
PUBLIC = {
    "healthz",
    "accounts:signup",
    "accounts:signup_sent",
    "accounts:signup_confirm",
    "accounts:login",
    "accounts:logout",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    "accounts:password_reset_complete",
    "accounts:invite_accept",
    "leads:gateway_webhook",
    # The TLS proxy's question and uploaded images (content-addressed names).
    "domain_check",
    "media",
    "robots",
}
# Funnel pages and their endpoints live on public hosts only (pages.public.urls);
# tests/pages/test_public_routes.py walks them on both kinds of public host.
# Personal actions any logged-in user may take on their own account.
SELF_SERVICE = {"accounts:workspace_create", "accounts:workspace_switch"}


def _lead(ws: Workspace) -> dict:
    lead = Lead.objects.create(workspace=ws, email=f"lead@{ws.public_id}.test")
    return {"pk": lead.pk}


def _export(ws: Workspace) -> dict:
    from leads.models import LeadExport

    return {"pk": LeadExport.objects.create(workspace=ws).pk}


def _webhook(ws: Workspace) -> dict:
    hook = Webhook.objects.create(workspace=ws, url="https://h.test", events=[])
    return {"pk": hook.pk}


def _sequence(ws: Workspace) -> dict:
    from leads.models import Sequence

    return {"pk": Sequence.objects.create(workspace=ws, name="S").pk}


def _sequence_step(ws: Workspace) -> dict:
    from leads.models import Sequence, SequenceStep

    s = Sequence.objects.create(workspace=ws, name="S")
    step = SequenceStep.objects.create(
        workspace=ws, sequence=s, position=0, subject="x", body="x"
    )
    return {"pk": s.pk, "step_pk": step.pk}


def _delivery(ws: Workspace) -> dict:
    hook = Webhook.objects.create(workspace=ws, url="https://h.test", events=[])
    d = WebhookDelivery.objects.create(
        workspace=ws, webhook=hook, event="x", payload={}
    )
    return {"pk": d.pk}


def _api_token(ws: Workspace) -> dict:
    from accounts.services import api_token_create

    token, _secret = api_token_create(workspace=ws, name="t")
    return {"pk": token.pk}


def _product(ws: Workspace) -> dict:
    from tests.factories import ProductFactory

    return {"pk": ProductFactory(workspace=ws).pk}


def _step(ws: Workspace) -> dict:
    from tests.factories import FunnelFactory, StepFactory

    return {"step_pk": StepFactory(funnel=FunnelFactory(workspace=ws)).pk}


def _order(ws: Workspace) -> dict:
    lead = Lead.objects.create(workspace=ws, email=f"buyer@{ws.public_id}.test")
    order = Order.objects.create(
        workspace=ws,
        lead=lead,
        currency="USD",
        gateway="test",
        status="paid",
        paid_minor=1000,
    )
    return {"pk": order.pk}


def _funnel(ws: Workspace) -> dict:
    from tests.factories import FunnelFactory

    return {"pk": FunnelFactory(workspace=ws).pk}


def _funnel_step(ws: Workspace) -> dict:
    from tests.factories import FunnelFactory, StepFactory

    step = StepFactory(funnel=FunnelFactory(workspace=ws))
    return {"pk": step.funnel_id, "step_pk": step.pk}


def _funnel_table(ws: Workspace) -> dict:
    return {**_funnel(ws), "table": "steps"}


def _ad_spend(ws: Workspace) -> dict:
    from analytics.models import AdSpend

    row = AdSpend.objects.create(
        workspace=ws,
        source="fb",
        date_from="2026-01-01",
        date_to="2026-01-31",
        amount_minor=100,
    )
    return {"pk": row.pk}


def _page(ws: Workspace) -> dict:
    from tests.pages.factories import page_with_blocks

    return {"pk": page_with_blocks("headline", workspace=ws).pk}


def _page_block(ws: Workspace) -> dict:
    from tests.pages.factories import page_with_blocks

    page = page_with_blocks("headline", workspace=ws)
    block = page.document["sections"][0]["rows"][0]["columns"][0]["blocks"][0]
    return {"pk": page.pk, "block_id": block["id"]}


def _page_section(ws: Workspace) -> dict:
    from tests.pages.factories import page_with_blocks

    page = page_with_blocks("headline", workspace=ws)
    return {"pk": page.pk, "section_id": page.document["sections"][0]["id"]}


def _page_history(ws: Workspace) -> dict:
    return {**_page(ws), "direction": "undo"}


def _page_version(ws: Workspace) -> dict:
    from pages.services import funnel_publish
    from tests.pages.factories import page_with_blocks

    page = page_with_blocks("headline", workspace=ws)
    version = funnel_publish(funnel=page.step.funnel, user=None)[0]
    return {"pk": page.pk, "version_pk": version.pk, "action": "restore"}


def _domain(ws: Workspace) -> dict:
    from pages.models import Domain
    from tests.factories import FunnelFactory

    domain = Domain.objects.create(
        workspace=ws,
        host=f"shop-{ws.pk}.example.test",
        funnel=FunnelFactory(workspace=ws),
    )
    return {"pk": domain.pk}


def _membership(ws: Workspace) -> dict:
    from tests.factories import MembershipFactory

    return {"pk": MembershipFactory(workspace=ws, role="editor").pk}


def _invitation(ws: Workspace) -> dict:
    inv = Invitation.objects.create(
        workspace=ws, email="i@x.test", expires_at=timezone.now() + timedelta(days=1)
    )
    return {"pk": inv.pk}


# Workspace-scoped URLs: name -> builder of kwargs for an object in a workspace
# (None for URLs without an object in the path).
SCOPED: dict[str, Callable[[Workspace], dict] | None] = {
    "funnels:home": None,
    "funnels:list": None,
    "funnels:create": None,
    "funnels:detail": _funnel,
    "funnels:update": _funnel,
    "funnels:duplicate": _funnel,
    "funnels:archive": _funnel,
    "funnels:unarchive": _funnel,
    "funnels:delete": _funnel,
    "funnels:step_create": _funnel,
    "funnels:step_reorder": _funnel,
    "funnels:step_update": _funnel_step,
    "funnels:step_move": _funnel_step,
    "funnels:step_delete": _funnel_step,
    "analytics:overview": None,
    "analytics:funnel": _funnel,
    "analytics:journey": _funnel,
    "analytics:funnel_export": _funnel_table,
    "analytics:ad_spend": None,
    "analytics:customers": None,
    "analytics:ad_spend_delete": _ad_spend,
    "accounts:settings": None,
    "accounts:members": None,
    "accounts:member_role": _membership,
    "accounts:member_remove": _membership,
    "accounts:invitation_revoke": _invitation,
    "leads:list": None,
    "leads:export_csv": None,
    "leads:export_create": None,
    "leads:export_status": _export,
    "leads:export_download": _export,
    "leads:bulk_tag": None,
    # The cohort's funnel is in the query (tests/leads/test_dropped.py: 404s).
    "leads:dropped": None,
    "leads:dropped_csv": None,
    "leads:dropped_tag": None,
    "leads:dropped_sequence": None,
    "leads:sequences": None,
    "leads:sequence_create": None,
    "leads:sequence_detail": _sequence,
    "leads:sequence_edit": _sequence,
    "leads:sequence_step_add": _sequence,
    "leads:sequence_step_edit": _sequence_step,
    "leads:sequence_step_delete": _sequence_step,
    "leads:detail": _lead,
    "leads:export_json": _lead,
    "leads:erase": _lead,
    "leads:webhooks": None,
    "leads:orders": None,
    "leads:orders_csv": None,
    "leads:order_detail": _order,
    "leads:order_refund": _order,
    "leads:step_offer": _step,
    "pages:step_edit": _step,
    "pages:editor": _page,
    "pages:edit": _page,
    "pages:block_settings": _page_block,
    "pages:block_update": _page_block,
    "pages:block_inplace": _page_block,
    "pages:block_style": _page_block,
    "pages:section_settings": _page_section,
    "pages:section_style": _page_section,
    "pages:section_image": _page_section,
    "pages:publish_check": _page,
    "pages:speed_budget": None,
    "pages:history": _page_history,
    "pages:image_upload": _page,
    "pages:settings": _page,
    "pages:theme": _page,
    "pages:versions": _page,
    "pages:version_action": _page_version,
    "pages:publish": _page,
    "pages:funnel_publish": lambda ws: {"funnel_pk": _funnel(ws)["pk"]},
    "pages:variants": _step,
    "pages:variant_add": _step,
    "pages:split_results": _step,
    "pages:variant_rename": _page,
    "pages:variant_state": lambda ws: {**_page(ws), "action": "pause"},
    "pages:variant_remove": _page,
    "pages:split_declare": _page,
    "pages:template_gallery": None,
    "pages:template_preview": lambda ws: {"key": "tripwire"},
    "pages:template_preview_step": lambda ws: {"key": "tripwire", "index": 1},
    "products:list": None,
    "products:create": None,
    "products:edit": _product,
    "products:archive": _product,
    "products:delete": _product,
    "leads:webhook_delete": _webhook,
    "domains:list": None,
    "domains:delete": _domain,
    "leads:webhook_resend": _delivery,
    "accounts:api_tokens": None,
    "accounts:api_token_revoke": _api_token,
    "accounts:audit_log": None,
    "accounts:audit_export": None,
}
# The REST API authenticates by token, not session: tests/api/test_auth.py runs every
# route of its OpenAPI document for 401/403/429, and each resource's tests for 404.
TOKEN_SCOPED_NAMESPACE = "api-v1:"


def _url_names(patterns=None, prefix: str = "") -> set[str]:
    names: set[str] = set()
    for p in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(p, URLResolver):
            ns = f"{prefix}{p.namespace}:" if p.namespace else prefix
            if p.namespace == "admin":
                continue
            names |= _url_names(p.url_patterns, ns)
        elif isinstance(p, URLPattern) and p.name:
            names.add(prefix + p.name)
    return names


def test_every_url_is_classified():
    """Each named URL is public, self-service or workspace-scoped with a builder."""
    names = {n for n in _url_names() if not n.startswith(TOKEN_SCOPED_NAMESPACE)}
    unclassified = names - PUBLIC - SELF_SERVICE - set(SCOPED)
    assert unclassified == set(), f"classify these URLs in {__name__}"
    assert not (PUBLIC | SELF_SERVICE | set(SCOPED)) - names, "stale entries"


# URLs whose kwargs name no workspace object (templates are shared by everyone).
NO_OBJECT = {"pages:template_preview", "pages:template_preview_step"}


@pytest.mark.parametrize(
    "name", sorted(n for n, b in SCOPED.items() if b and n not in NO_OBJECT)
)
def test_stranger_gets_404_for_objects_not_theirs(client, name, workspace, stranger):
    """A member of another workspace gets 404 (GET and POST) for this object."""
    kwargs = SCOPED[name](workspace)
    client.force_login(stranger)
    url = reverse(name, kwargs=kwargs)
    assert client.post(url).status_code == 404
    assert client.get(url).status_code in {404, 405}


@pytest.mark.parametrize("name", sorted(SCOPED))
def test_viewer_gets_403_on_every_write(client, name, workspace, viewer):
    """A viewer's POST to any workspace URL is refused with 403."""
    builder = SCOPED[name]
    url = reverse(name, kwargs=builder(workspace) if builder else None)
    client.force_login(viewer)
    response = client.post(url)
    if name == "accounts:member_remove":
        # Leaving is allowed to everyone, but only for their own membership.
        assert response.status_code == 403
        own = Membership.objects.get(user=viewer)
        assert client.post(reverse(name, args=[own.pk])).status_code == 302
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("name", sorted(n for n, b in SCOPED.items() if b is None))
def test_anonymous_is_sent_to_login(client, name):
    """Workspace pages ask an anonymous visitor to log in."""
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
