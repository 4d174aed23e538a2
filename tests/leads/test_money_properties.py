"""Property: whatever the interleaving of pay / decline / retry / accept /
decline-offer / refund / gateway event over several orders, for every order the
gateway's succeeded charges minus refunds equal the order's paid minus refunded,
never above the frozen prices of what the buyer chose, and the dashboard's revenue
equals the sum over the orders."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from analytics import reports, rollups
from analytics import services as analytics_services
from funnels.models import StepOffer
from leads import checkout
from leads.gateways import WebhookEvent, testgateway
from leads.gateways.testgateway import DECLINED_CARD, SUCCESS_CARD, TIMEOUT_CARD
from leads.models import Order, Payment
from tests.factories import FunnelFactory, ProductFactory, StepFactory, offers_freeze
from tests.leads.concurrency import GatewayLedger

pytestmark = pytest.mark.django_db

PRICES = {"main": 2700, "bump": 900, "upsell": 9700, "downsell": 4700}
CARDS = {"ok": SUCCESS_CARD, "declined": DECLINED_CARD, "timeout": TIMEOUT_CARD}
ORDERS = 3

ops = st.one_of(
    st.tuples(
        st.just("pay"),
        st.integers(0, ORDERS - 1),
        st.sampled_from(sorted(CARDS)),
        st.booleans(),
    ),
    st.tuples(
        st.sampled_from(["accept", "decline"]),
        st.integers(0, ORDERS - 1),
        st.sampled_from(["upsell", "downsell"]),
        st.just(False),
    ),
    st.tuples(
        st.sampled_from(["refund", "gateway_refund"]),
        st.integers(0, ORDERS - 1),
        st.sampled_from([100, 900, 2700, 5000]),
        st.just(False),
    ),
    st.tuples(
        st.just("gateway_settles"),
        st.integers(0, ORDERS - 1),
        st.sampled_from(["succeeded", "failed"]),
        st.just(False),
    ),
)


def _shop(workspace):
    funnel = FunnelFactory(workspace=workspace, published_at=timezone.now())
    order = StepFactory(funnel=funnel, kind="order", position=0)
    upsell = StepFactory(funnel=funnel, kind="upsell", position=1)
    downsell = StepFactory(funnel=funnel, kind="downsell", position=2)
    StepFactory(funnel=funnel, kind="thankyou", position=3)
    upsell.decline_target = downsell
    upsell.save()

    def product(key):
        return ProductFactory(workspace=workspace, price_minor=PRICES[key])

    StepOffer.objects.create(
        workspace=workspace,
        step=order,
        product=product("main"),
        bump_product=product("bump"),
    )
    StepOffer.objects.create(
        workspace=workspace, step=upsell, product=product("upsell")
    )
    StepOffer.objects.create(
        workspace=workspace, step=downsell, product=product("downsell")
    )
    offers_freeze(funnel)
    return funnel, {"order": order, "upsell": upsell, "downsell": downsell}


class Run:
    def __init__(self, workspace, ledger: GatewayLedger) -> None:
        self.workspace = workspace
        self.ledger = ledger
        self.funnel, self.steps = _shop(workspace)
        self.nonces = [uuid.uuid4().hex for _ in range(ORDERS)]
        self.chosen: dict[int, int] = {}  # order pk -> frozen prices of its choices
        self.outside = 0

    def order(self, i: int) -> Order | None:
        return Order.objects.filter(form_token=self.nonces[i]).first()

    def apply(self, op: str, i: int, arg, flag: bool) -> None:
        order = self.order(i)
        if op == "pay":
            result = checkout.order_checkout(
                step=self.steps["order"],
                data={"email": f"buyer{i}@x.io"},
                payment_token=CARDS[arg],
                with_bump=flag,
                nonce=self.nonces[i],
            )
            if result.order.pk not in self.chosen:
                self.chosen[result.order.pk] = PRICES["main"] + (
                    PRICES["bump"] if flag else 0
                )
        elif order is None:
            return
        elif op == "accept":
            result = checkout.upsell_accept(order=order, step=self.steps[arg])
            if result.item is not None and result.item.pk:
                self.chosen[order.pk] = self.chosen.get(order.pk, 0)
                if not getattr(self, f"took_{order.pk}_{arg}", False):
                    setattr(self, f"took_{order.pk}_{arg}", True)
                    self.chosen[order.pk] += PRICES[arg]
        elif op == "decline":
            checkout.upsell_decline(order=order, step=self.steps[arg])
        elif op == "refund":
            try:
                checkout.order_refund(
                    workspace=self.workspace, order=order, amount_minor=arg
                )
            except ValidationError:
                order.refresh_from_db()
                assert arg > order.paid_minor - order.refunded_minor
        elif op == "gateway_refund":
            self._refund_outside(order, arg)
        elif op == "gateway_settles":
            self._settle_outside(order, arg)

    def _refund_outside(self, order: Order, amount: int) -> None:
        """Someone refunds in the gateway's dashboard; its webhook follows."""
        charge = (
            Payment.objects.filter(order=order, kind="charge", status="succeeded")
            .order_by("id")
            .first()
        )
        if charge is None:
            return
        left = charge.amount_minor - self.ledger.refunded_by_charge.get(
            charge.reference, 0
        )
        amount = min(amount, left)
        if amount <= 0:
            return
        self.outside += 1
        total = self.ledger.refund_outside(
            key=f"{order.public_id}:outside:{self.outside}",
            reference=charge.reference,
            amount=amount,
        )
        checkout.gateway_event_apply(
            gateway="test",
            event=WebhookEvent(
                id=f"evt_{uuid.uuid4().hex}",
                type="payment.refunded",
                reference=charge.reference,
                kind="payment.refunded",
                amount_minor=charge.amount_minor,
                currency="USD",
                refunded_minor=total,
            ),
        )

    def _settle_outside(self, order: Order, outcome: str) -> None:
        """The gateway finally answers for a payment it left unknown (timeout)."""
        payment = Payment.objects.filter(
            order=order, kind="charge", status="pending", sent_at__isnull=False
        ).first()
        if payment is None:
            return
        if outcome == "succeeded":
            self.ledger.charges[payment.idempotency_key] = payment.amount_minor
        checkout.gateway_event_apply(
            gateway="test",
            event=WebhookEvent(
                id=f"evt_{uuid.uuid4().hex}",
                type=f"payment.{outcome}",
                # The gateway names its payment in the event, as a real one does.
                reference=testgateway.payment_reference(payment.idempotency_key),
                kind=f"payment.{outcome}",
                payment_key=payment.idempotency_key,
                amount_minor=payment.amount_minor,
                currency="USD",
            ),
        )

    def check(self) -> None:
        total = 0
        for order in Order.objects.filter(funnel=self.funnel):
            prefix = f"{order.public_id}:"
            gateway_net = self.ledger.charged_for(prefix) - self.ledger.refunded_for(
                prefix
            )
            assert gateway_net == order.paid_minor - order.refunded_minor, order
            assert 0 <= order.refunded_minor <= order.paid_minor
            assert order.paid_minor <= self.chosen[order.pk]
            assert self.ledger.charged_for(prefix) <= self.chosen[order.pk]
            total += order.paid_minor - order.refunded_minor
        analytics_services.events_flush(max_seconds=5)
        rollups.rollups_update()
        today = timezone.localdate()
        report = reports.funnel_report(
            workspace=self.workspace,
            funnel=self.funnel,
            filters=reports.ReportFilters(
                today - timedelta(days=1), today + timedelta(days=1)
            ),
            detail=False,
        )
        assert report.totals.revenue_minor == total


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.lists(ops, min_size=1, max_size=18))
# A timed-out charge the gateway settles later, then refunds from its dashboard.
@example(
    sequence=[
        ("pay", 1, "timeout", False),
        ("gateway_settles", 1, "succeeded", False),
        ("gateway_refund", 1, 100, False),
    ]
)
def test_money_balances_over_any_interleaving(
    workspace, monkeypatch, django_capture_on_commit_callbacks, sequence
):
    # Every row here carries the test transaction's start as inserted_at; a long
    # run of examples outlasts MARGIN (how long rollups assume a writing
    # transaction stays open), which production transactions never do.
    monkeypatch.setattr(rollups, "MARGIN", timedelta(days=1))
    ledger = GatewayLedger()
    ledger.LATENCY = 0
    # Each example in its own savepoint, rolled back after: examples start from
    # the same database, and the locks one example takes (rollups' temporary
    # tables) are released instead of piling up in the test's transaction.
    with monkeypatch.context() as patch, transaction.atomic():
        ledger.install(patch)
        run = Run(workspace, ledger)
        with django_capture_on_commit_callbacks(execute=True):
            for op in sequence:
                run.apply(*op)
        run.check()
        transaction.set_rollback(True)
