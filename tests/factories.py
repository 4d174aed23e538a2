from __future__ import annotations

import factory
from django.utils.text import slugify

from accounts.models import Membership, User, Workspace
from funnels.models import Funnel, Step

PASSWORD = "correct-horse-battery-staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class WorkspaceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Workspace

    name = factory.Sequence(lambda n: f"Workspace {n}")
    # A readable public host label: acme.localhost, globex.localhost, ...
    slug = factory.LazyAttribute(lambda o: slugify(o.name))


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    workspace = factory.SubFactory(WorkspaceFactory)
    role = "editor"


class FunnelFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Funnel

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Funnel {n}")
    slug = factory.Sequence(lambda n: f"funnel-{n}")


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Step

    funnel = factory.SubFactory(FunnelFactory)
    workspace = factory.SelfAttribute("funnel.workspace")
    name = factory.Sequence(lambda n: f"Step {n}")
    slug = factory.Sequence(lambda n: f"step-{n}")
    kind = "optin"
    position = factory.Sequence(lambda n: n)


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "funnels.Product"

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"Product {n}")
    price_minor = 2700
    currency = "USD"
