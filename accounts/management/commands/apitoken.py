"""``manage.py apitoken create --workspace SLUG --name NAME [--read-only]``:
create an API token and print it (the only time it is shown);
``apitoken list --workspace SLUG`` and ``apitoken revoke --workspace SLUG ID``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts import selectors, services
from accounts.actors import Actor, acting_as
from accounts.models import TokenRole, Workspace


def workspace_for(slug: str) -> Workspace:
    found = Workspace.objects.filter(slug=slug.strip().lower()).first()
    if found is None:
        raise CommandError(
            f"No workspace {slug!r}: pass its slug (Settings → General, the "
            "workspace's address)."
        )
    return found


class Command(BaseCommand):
    help = "Create, list or revoke workspace API tokens."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Create a token and print it")
        create.add_argument("--workspace", required=True, help="Workspace slug")
        create.add_argument("--name", required=True)
        create.add_argument(
            "--read-only", action="store_true", help="Can read, cannot change"
        )
        create.add_argument(
            "--expires-in-days", type=int, default=None, help="Default: never"
        )
        listing = sub.add_parser("list", help="List a workspace's tokens")
        listing.add_argument("--workspace", required=True)
        revoke = sub.add_parser("revoke", help="Revoke a token by its id")
        revoke.add_argument("--workspace", required=True)
        revoke.add_argument("token_id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        workspace = workspace_for(options["workspace"])
        with acting_as(Actor(label="manage.py apitoken")):
            getattr(self, f"_{options['action']}")(workspace, options)

    def _create(self, workspace: Workspace, options: dict[str, Any]) -> None:
        days = options["expires_in_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-in-days must be 1 or more.")
        try:
            _token, secret = services.api_token_create(
                workspace=workspace,
                name=options["name"],
                role=TokenRole.READ_ONLY
                if options["read_only"]
                else TokenRole.READ_WRITE,
                expires_at=timezone.now() + timedelta(days=days) if days else None,
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(secret)

    def _list(self, workspace: Workspace, options: dict[str, Any]) -> None:
        for token in selectors.api_tokens_for(workspace=workspace):
            used = (
                f"{token.last_used_at:%Y-%m-%d %H:%M}"
                if token.last_used_at
                else "never"
            )
            self.stdout.write(
                f"{token.pk}\t{token.prefix}…\t{token.name}\t{token.role}\t"
                f"{token.status}\tlast used {used}"
            )

    def _revoke(self, workspace: Workspace, options: dict[str, Any]) -> None:
        token = selectors.api_token_get(workspace=workspace, pk=options["token_id"])
        if token is None:
            raise CommandError(f"No token {options['token_id']} in this workspace.")
        services.api_token_revoke(workspace=workspace, token=token)
        self.stdout.write(f"Revoked {token.name} ({token.prefix}…).")
