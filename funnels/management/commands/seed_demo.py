"""Create (once) a demo workspace, user and funnel for a newcomer to open."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import Membership, Role, User, Workspace
from funnels.models import Funnel, Step, StepKind

DEMO_EMAIL = "demo@openfunnels.local"
DEMO_PASSWORD = "demo-funnels-2024"
DEMO_WORKSPACE = "Demo Co."


class Command(BaseCommand):
    help = "Create the demo workspace, user and funnel if they do not exist yet."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(
                DEMO_EMAIL, DEMO_PASSWORD, full_name="Demo Marketer"
            )
        membership = user.memberships.select_related("workspace").first()
        if membership is None:
            workspace = Workspace.objects.create(name=DEMO_WORKSPACE)
            membership = Membership.objects.create(
                user=user, workspace=workspace, role=Role.OWNER
            )
        workspace = membership.workspace
        if not Funnel.objects.filter(workspace=workspace).exists():
            funnel = Funnel.objects.create(
                workspace=workspace, name="Free guide: 7 funnel mistakes", slug="guide"
            )
            for position, (name, slug, kind) in enumerate(
                [
                    ("Get the guide", "optin", StepKind.OPTIN),
                    ("Thank you", "thank-you", StepKind.THANKYOU),
                ]
            ):
                Step.objects.create(
                    workspace=workspace,
                    funnel=funnel,
                    name=name,
                    slug=slug,
                    kind=kind,
                    position=position,
                )
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
