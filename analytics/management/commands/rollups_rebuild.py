"""Rebuild the dashboard rollups for a date range from raw events."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from analytics.rollups import rollups_rebuild


class Command(BaseCommand):
    help = "Recompute every rollup touched by events between two dates (inclusive)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("date_from", help="first day, e.g. 2026-01-01")
        parser.add_argument("date_to", help="last day, e.g. 2026-01-31")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            start = date.fromisoformat(options["date_from"])
            end = date.fromisoformat(options["date_to"])
        except ValueError as exc:
            raise CommandError(f"Dates look like 2026-01-31: {exc}") from None
        if start > end:
            raise CommandError("The first date is after the last date.")
        run = rollups_rebuild(date_from=start, date_to=end)
        self.stdout.write(
            f"Rebuilt {run.visitors} visitors' facts and {run.days} day buckets "
            f"for {start} to {end}."
        )
