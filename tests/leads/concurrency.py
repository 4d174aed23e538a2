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
