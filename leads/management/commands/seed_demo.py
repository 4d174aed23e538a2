"""Create (once) a demo workspace, user and published funnel for a newcomer to open."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from accounts.services import workspace_create
from funnels.models import Funnel, Product, StepOffer
from pages.services import funnel_create_from_template, funnel_publish

DEMO_EMAIL = "demo@openfunnels.local"
DEMO_PASSWORD = "demo-funnels-2024"
DEMO_WORKSPACE = "Demo Co."
# Product name, price in cents, for the Tripwire template's selling steps.
OFFERS = {
    "order": ("The Funnel Fix Checklist", 700, ("Swipe-file pack", 900)),
    "upsell": ("Funnel Mastery video course", 9700, None),
    "downsell": ("Funnel Mastery Lite", 4700, None),
}


class Command(BaseCommand):
    help = "Create the demo workspace, user and published funnel if missing."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None:
            user = User.objects.create_user(
                DEMO_EMAIL, DEMO_PASSWORD, full_name="Demo Marketer"
            )
        membership = user.memberships.select_related("workspace").first()
        if membership is None:
            workspace_create(name=DEMO_WORKSPACE, owner=user)
            membership = user.memberships.select_related("workspace").get()
        workspace = membership.workspace
        if not Funnel.objects.filter(workspace=workspace).exists():
            funnel = funnel_create_from_template(
                workspace=workspace,
                user=user,
                template_key="tripwire",
                name="Funnel Fix Tripwire",
            )
            for step in funnel.steps.all():
                if step.kind not in OFFERS:
                    continue
                name, price, bump = OFFERS[step.kind]
                product = Product.objects.create(
                    workspace=workspace, name=name, price_minor=price
                )
                bump_product = (
                    Product.objects.create(
                        workspace=workspace, name=bump[0], price_minor=bump[1]
                    )
                    if bump
                    else None
                )
                StepOffer.objects.create(
                    workspace=workspace,
                    step=step,
                    product=product,
                    bump_product=bump_product,
                    bump_headline=f"Yes! Add the {bump[0]} for ${bump[1] // 100}"
                    if bump
                    else "",
                )
            funnel_publish(funnel=funnel, user=user)
            self.stdout.write(f"Demo funnel published at {funnel.public_url()}")
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
