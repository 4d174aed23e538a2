"""Ship the view logs (nginx's and the app's) into the event table, forever.

Started by `make run` (scripts/run.py) and by compose (service "shipper"). Safe to
kill at any moment and to run twice: offsets commit with the rows they cover.
"""

from __future__ import annotations

import signal

from django.core.management.base import BaseCommand

from analytics import shipper


class Command(BaseCommand):
    help = "Tail the view logs and COPY the views into the event table."
    # A restarted shipper must be back at work at once: the system checks (which
    # import every URLconf and API module) cost seconds on a busy machine.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=0.1)
        parser.add_argument("--once", action="store_true")

    def handle(self, *args, interval: float = 0.1, once: bool = False, **opts):
        if once:
            stored = shipper.ship_once()
            self.stdout.write(f"shipped: {stored} new events")
            return
        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
        signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
        self.stdout.write(f"shipping {shipper.logs_dir()} every {interval}s")
        self.stdout.flush()  # "ready", for supervisors and benches reading a pipe
        shipper.ship_forever(interval=interval, stop=lambda: bool(stopping))
