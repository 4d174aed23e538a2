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
# The Tripwire template's selling steps: (name, price, regular price) in cents, and
# the bump. The pages' copy reads names and prices through merge fields
# ({{offer.price}}), so what the buttons say is what is charged.
OFFERS = {
    "order": (
        ("30-Day Meal Plan", 700, 4700),
        ("Healthy Desserts Pack", 900, 2900),
    ),
    "upsell": (("Prep-Along Video Course", 3700, None), None),
    "downsell": (("Prep-Along Audio Edition", 1700, None), None),
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
                main, bump = OFFERS[step.kind]
                product = Product.objects.create(
                    workspace=workspace,
                    name=main[0],
                    price_minor=main[1],
                    compare_at_minor=main[2],
                )
                bump_product = (
                    Product.objects.create(
                        workspace=workspace,
                        name=bump[0],
                        price_minor=bump[1],
                        compare_at_minor=bump[2],
                    )
                    if bump
                    else None
                )
                StepOffer.objects.create(
                    workspace=workspace,
                    step=step,
                    product=product,
                    bump_product=bump_product,
                )
            funnel_publish(funnel=funnel, user=user)
            self.stdout.write(f"Demo funnel published at {funnel.public_url()}")
        self.stdout.write(f"Demo login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
