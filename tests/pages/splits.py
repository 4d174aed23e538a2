"""Scripted split-test traffic, recorded through the real tracking path.

Serving's variant assignment lands separately, so tests pick the variant themselves
(a tiny deterministic pick, like serving's sticky hash) and record events through
``analytics.services`` with explicit variant ids, then flush and roll up.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from analytics import ingest, rollups, services

AMOUNTS = {"order": 2700, "bump": 900, "upsell_accept": 9700, "refund": 500}


def pick(visitor: uuid.UUID, step_id: int, pages: list) -> int:
    """Sticky weighted pick among served pages (hash of visitor and step)."""
    served = [p for p in pages if p.weight > 0]
    total = sum(p.weight for p in served)
    digest = hashlib.sha256(f"{visitor}:{step_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") % total
    for page in served:
        if point < page.weight:
            return page.pk
        point -= page.weight
    raise AssertionError("unreachable")


def event(funnel, step, visitor, kind, at: datetime, variant_id=None) -> dict:
    return {
        "workspace_id": funnel.workspace_id,
        "funnel_id": funnel.pk,
        "step_id": step.pk,
        "visitor_id": visitor,
        "kind": kind,
        "occurred_at": at,
        "variant_id": variant_id,
        "amount_minor": AMOUNTS.get(kind),
        "currency": "USD" if kind in AMOUNTS else "",
    }


def record(events: list[dict]) -> None:
    """Record through analytics.services, store the stream, fold into rollups."""
    ingest.partitions_forget()  # partitions made in a rolled-back test are gone
    assert services.events_record_many(events) == len(events)
    services.events_flush()
    rollups.rollups_update()
