"""Write the published files and nginx's configuration (pages.edge), once or on a
loop (``--every SECONDS``: the safety net for changes made outside the services,
such as a workspace's new slug)."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError

from pages import edge


class Command(BaseCommand):
    help = "Write the published pages as files and the nginx configuration."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--every", type=float, default=0.0)

    def handle(self, *args, every: float = 0.0, **options) -> None:
        while True:
            try:
                changed = edge.edge_sync()
            except edge.EdgeError as exc:
                if not every:
                    raise CommandError(
                        f"nginx refused the configuration: {exc}"
                    ) from exc
                self.stderr.write(f"edge_sync: nginx refused the config: {exc}")
                changed = False
            if not every:
                self.stdout.write(
                    f"edge: {edge.conf_path()} {'updated' if changed else 'unchanged'}"
                )
                return
            time.sleep(every)
