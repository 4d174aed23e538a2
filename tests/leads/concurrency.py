"""Real concurrency against real PostgreSQL: threads with their own connections,
released together by a barrier, and a ledger of what the test gateway was asked to
move (a real gateway counts one charge per idempotency key)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from django.db import connections
from django.test import Client

from leads.gateways.base import ChargeResult
from leads.gateways.testgateway import TestGateway


def concurrently(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(0..n-1) in n threads started at the same instant; return results
    (an exception raised by a thread is returned in its place)."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as exc:
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def public_client(
    cookies: dict[str, str] | None = None, host: str = "acme.localhost"
) -> Client:
    """A visitor's browser on the workspace's public host (the ``workspace``
    fixture's, by default): a 500 comes back as a response, not an exception."""
    client = Client(raise_request_exception=False, HTTP_HOST=host)
    for key, value in (cookies or {}).items():
        client.cookies[key] = value
    return client


class GatewayLedger:
    """What the test gateway charged and refunded, one entry per idempotency key
    (as a real gateway counts them), with a little latency to widen races."""

    LATENCY = 0.05

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.charges: dict[str, int] = {}
        self.refunds: dict[str, int] = {}
        # Refunded so far per charge (the gateway's "amount_refunded").
        self.refunded_by_charge: dict[str, int] = {}
        self.calls = 0

    def install(self, monkeypatch) -> GatewayLedger:
        charge, charge_saved, refund = (
            TestGateway.charge,
            TestGateway.charge_saved,
            TestGateway.refund,
        )
        ledger = self

        def record(result, key: str, amount: int):
            with ledger.lock:
                ledger.calls += 1
                if result.succeeded:
                    ledger.charges[key] = amount
            return result

        def charge_(gw, **kw):
            time.sleep(ledger.LATENCY)
            return record(charge(gw, **kw), kw["idempotency_key"], kw["amount_minor"])

        def charge_saved_(gw, **kw):
            time.sleep(ledger.LATENCY)
            return record(
                charge_saved(gw, **kw), kw["idempotency_key"], kw["amount_minor"]
            )

        def refund_(gw, **kw):
            time.sleep(ledger.LATENCY)
            result = refund(gw, **kw)
            with ledger.lock:
                if kw["idempotency_key"] not in ledger.refunds:
                    ref = kw["reference"]
                    ledger.refunded_by_charge[ref] = (
                        ledger.refunded_by_charge.get(ref, 0) + kw["amount_minor"]
                    )
                ledger.refunds[kw["idempotency_key"]] = kw["amount_minor"]
            return result

        monkeypatch.setattr(TestGateway, "charge", charge_)
        monkeypatch.setattr(TestGateway, "charge_saved", charge_saved_)
        monkeypatch.setattr(TestGateway, "refund", refund_)
        return self

    def refund_outside(self, *, key: str, reference: str, amount: int) -> int:
        """A refund made in the gateway's own dashboard; returns the charge's new
        refunded total (what the gateway's webhook reports)."""
        with self.lock:
            self.refunds[key] = amount
            total = self.refunded_by_charge.get(reference, 0) + amount
            self.refunded_by_charge[reference] = total
            return total

    def charged_for(self, prefix: str) -> int:
        return sum(v for k, v in self.charges.items() if k.startswith(prefix))

    def refunded_for(self, prefix: str) -> int:
        return sum(v for k, v in self.refunds.items() if k.startswith(prefix))

    @property
    def charged(self) -> int:
        return sum(self.charges.values())

    @property
    def refunded(self) -> int:
        return sum(self.refunds.values())


class ThreeDSBank:
    """The gateway's and the bank's side of 3-D Secure, as Stripe keeps it: a
    payment that needs authentication waits until the visitor passes the bank's
    check (then it succeeds and money moves) or until it is cancelled, whichever
    comes first; once one happened, the other is refused. Install after the
    ledger (it records the money a confirmation moves)."""

    def __init__(self, ledger: GatewayLedger) -> None:
        self.ledger = ledger
        self.lock = threading.Lock()
        # reference -> [state, idempotency key, amount]
        self.intents: dict[str, list[Any]] = {}
        self.cancels = 0

    def install(self, monkeypatch) -> ThreeDSBank:
        charge, retrieve = TestGateway.charge, TestGateway.retrieve
        bank = self

        def charge_(gw, **kw):
            result = charge(gw, **kw)
            if result.status == "requires_action":
                with bank.lock:
                    bank.intents.setdefault(
                        result.reference,
                        ["requires_action", kw["idempotency_key"], kw["amount_minor"]],
                    )
                # As Stripe does: the browser gets what it needs for the check.
                return _answer("requires_action", result.reference)
            return result

        def state(reference: str):
            with bank.lock:
                intent = bank.intents.get(reference)
                return None if intent is None else intent[0]

        def retrieve_(gw, *, reference: str):
            time.sleep(GatewayLedger.LATENCY)
            now = state(reference)
            if now is None:
                return retrieve(gw, reference=reference)
            return _answer(now, reference)

        def cancel_(gw, *, reference: str):
            time.sleep(GatewayLedger.LATENCY)
            with bank.lock:
                bank.cancels += 1
                intent = bank.intents.get(reference)
                if intent is None:
                    return ChargeResult("declined", reference=reference)
                if intent[0] == "requires_action":
                    intent[0] = "canceled"
                return _answer(intent[0], reference)

        monkeypatch.setattr(TestGateway, "charge", charge_)
        monkeypatch.setattr(TestGateway, "retrieve", retrieve_)
        monkeypatch.setattr(TestGateway, "cancel", cancel_, raising=False)
        return self

    def confirm(self, reference: str) -> bool:
        """The visitor passes the bank's check: the payment succeeds unless it was
        cancelled first. True when money moved."""
        with self.lock:
            intent = self.intents.get(reference)
            if intent is None or intent[0] != "requires_action":
                return False
            intent[0] = "succeeded"
        with self.ledger.lock:
            self.ledger.charges[intent[1]] = intent[2]
        return True

    def waiting(self) -> list[str]:
        """References still waiting for the bank's check (could still charge)."""
        with self.lock:
            return [r for r, i in self.intents.items() if i[0] == "requires_action"]


def _answer(state: str, reference: str) -> ChargeResult:
    if state == "succeeded":
        return ChargeResult("succeeded", reference=reference)
    if state == "requires_action":
        return ChargeResult(
            "requires_action", reference=reference, action_secret=f"{reference}_s"
        )
    return ChargeResult("declined", reference=reference, message="Canceled.")
