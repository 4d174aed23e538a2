from __future__ import annotations

import io
import re
import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urljoin

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import slugify
from PIL import Image, ImageOps, UnidentifiedImageError

from accounts.models import User, Workspace
from accounts.services import audit_record
from funnels import paths
from funnels import selectors as funnel_selectors
from funnels import services as funnel_services
from funnels.models import Funnel, PublishedOffer, Step, StepKind
from funnels.offers import merge_values

from . import documents, edge, selectors, serving, speed
from .documents import Doc, DocumentError
from .models import (
    Domain,
    FunnelTheme,
    ImageAsset,
    Page,
    PageRevision,
    PageVersion,
    SpeedBudget,
    SplitTest,
)
from .rendering import RenderContext, render_document
from .sanitize import clean_text

HISTORY_LIMIT = 200
CONFLICT_MESSAGE = "This page changed in another tab — reload to see the latest."


class EditConflict(ValidationError):
    pass


# Drafts ----------------------------------------------------------------------


def _lock(page: Page, revision: int | None) -> Page:
    locked = Page.objects.select_for_update().get(pk=page.pk)
    if revision is not None and locked.draft_revision != revision:
        raise EditConflict(CONFLICT_MESSAGE)
    return locked


def _store(page: Page, doc: Doc, label: str, group: str = "") -> Page:
    """Save a new draft and push it onto the undo history (dropping redo).

    An edit whose ``group`` matches the current revision's (one typing session
    on the canvas) replaces that revision instead, when nothing was undone."""
    if group:
        current = PageRevision.objects.filter(
            page=page, number=page.history_pointer, group=group
        ).first()
        newest = not PageRevision.objects.filter(
            page=page, number__gt=page.history_pointer
        ).exists()
        if current is not None and newest:
            current.document = doc
            current.save(update_fields=["document"])
            page.document = doc
            page.draft_revision += 1
            page.save(update_fields=["document", "draft_revision", "updated_at"])
            return page
    number = page.history_pointer + 1
    PageRevision.objects.filter(page=page, number__gte=number).delete()
    PageRevision.objects.create(
        page=page, number=number, document=doc, label=label, group=group
    )
    page.document = doc
    page.history_pointer = number
    page.draft_revision += 1
    page.save(
        update_fields=["document", "history_pointer", "draft_revision", "updated_at"]
    )
    return page


@transaction.atomic
def page_edit(
    *,
    page: Page,
    revision: int | None,
    operation: Callable[[Doc], Doc],
    label: str = "Edit",
    group: str = "",
) -> Page:
    """Apply a pure document operation to the draft. ``revision`` is the
    draft_revision the editor saw; a different one means another tab edited.
    Edits sharing a ``group`` fold into one undo step (see ``_store``)."""
    locked = _lock(page, revision)
    try:
        doc = operation(locked.document)
    except DocumentError as exc:
        raise ValidationError(str(exc)) from exc
    return _store(locked, doc, label, group)


@transaction.atomic
def page_undo(*, page: Page, revision: int | None) -> Page:
    locked = _lock(page, revision)
    target = (
        PageRevision.objects.filter(page=locked, number__lt=locked.history_pointer)
        .order_by("-number")
        .first()
    )
    if target is None:
        raise ValidationError("Nothing to undo.")
    return _move_pointer(locked, target)


@transaction.atomic
def page_redo(*, page: Page, revision: int | None) -> Page:
    locked = _lock(page, revision)
    target = (
        PageRevision.objects.filter(page=locked, number__gt=locked.history_pointer)
        .order_by("number")
        .first()
    )
    if target is None:
        raise ValidationError("Nothing to redo.")
    return _move_pointer(locked, target)


def _move_pointer(page: Page, target: PageRevision) -> Page:
    page.document = target.document
    page.history_pointer = target.number
    page.draft_revision += 1
    page.save(
        update_fields=["document", "history_pointer", "draft_revision", "updated_at"]
    )
    return page


@transaction.atomic
def page_restore_version(
    *, page: Page, version: PageVersion, revision: int | None
) -> Page:
    """Bring a published version back into the draft (undoable)."""
    if version.page_id != page.pk:
        raise ValidationError("That version belongs to another page.")
    locked = _lock(page, revision)
    return _store(locked, version.document, f"Restored version {version.number}")


@transaction.atomic
def page_create_blank(
    *, step: Step, document: Doc | None = None, name: str = "Variant A"
) -> Page:
    page = Page.objects.create(
        workspace_id=step.workspace_id,
        step=step,
        name=name,
        title=step.name,
        document=document or {"sections": []},
    )
    PageRevision.objects.create(
        page=page, number=0, document=page.document, label="Created"
    )
    return page


def page_for_step(*, step: Step) -> Page:
    page = step.pages.filter(archived_at__isnull=True).order_by("id").first()
    return page or page_create_blank(step=step)


@transaction.atomic
def page_update_settings(*, page: Page, data: dict[str, Any]) -> Page:
    for key, value in data.items():
        setattr(page, key, value)
    page.save()
    return page


@transaction.atomic
def theme_update(*, funnel: Funnel, data: dict[str, Any]) -> FunnelTheme:
    theme = selectors.theme_for(funnel=funnel)
    for key, value in data.items():
        setattr(theme, key, value)
    theme.save()
    return theme


# Publishing ------------------------------------------------------------------


def _forget_live_pages(funnel: Funnel | None = None) -> None:
    """After a publish, unpublish, rollback or domain change, serving looks anew.

    Bumps the serving generation (pages.serving) now, for this process, and again
    after the commit, in case another request cached the old state in between.
    """
    serving.generation_bump()
    transaction.on_commit(serving.generation_bump)
    # The files nginx serves and its configuration follow (pages.edge).
    transaction.on_commit(edge.edge_sync_quietly)


SECRET_FORM_FIELDS = frozenset({"card", "cvc", "exp", "_of", "website"})


def public_path(funnel: Funnel, step: Step) -> str:
    return f"/{funnel.slug}/{step.slug}/"


def _render_public(
    page: Page,
    doc: Doc,
    steps: list[Step],
    theme: FunnelTheme,
    *,
    form_values: dict[str, str] | None = None,
    form_errors: dict[str, list[str]] | None = None,
    action_query: str = "",
) -> str:
    step = page.step
    funnel = step.funnel
    next_step = paths.funnel_paths(funnel_id=funnel.pk, steps=steps).next(step)
    next_url = public_path(funnel, next_step) if next_step else "#"
    base = public_path(funnel, step)
    query = f"?{action_query}" if action_query else ""
    # The offer frozen by the last publish: the page shows what the checkout charges.
    offer = (
        PublishedOffer.objects.select_related("product", "bump_product")
        .filter(pk=step.live_offer_id)
        .first()
        if step.live_offer_id
        else None
    )
    ctx = RenderContext(
        editor=False,
        next_url=next_url,
        form_action=next_url,
        optin_action=f"{base}optin/{query}",
        order_action=f"{base}order/{query}",
        accept_action=f"{base}accept/{query}",
        decline_action=f"{base}decline/{query}",
        stripe_key=settings.STRIPE_PUBLISHABLE_KEY
        if settings.PAYMENT_GATEWAY == "stripe"
        else "",
        offer=offer,
        merge=merge_values(offer),
        step_urls={str(s.pk): public_path(funnel, s) for s in steps},
        images=selectors.images_for(
            workspace_id=page.workspace_id, ids=documents.image_ids(doc)
        ),
        form_values=form_values or {},
        form_errors=form_errors or {},
    )
    return render_to_string(
        "pages/public_page.html",
        {
            "page": page,
            "body": render_document(doc, ctx),
            "theme": theme,
            "funnel": funnel,
            "step": step,
            "receipt_url": f"{base}receipt/"
            if step.kind == StepKind.THANKYOU
            and any(s.kind == StepKind.ORDER for s in steps)
            else "",
        },
    )


def page_render_refused_form(
    *,
    step: Step,
    page_id: int | None,
    values: dict[str, str],
    errors: dict[str, list[str]],
    action_query: str = "",
) -> str | None:
    """The step's live page again, with what the visitor typed and what was wrong.

    Rendered from the published version's frozen document (the visitor's variant
    when known), so the visitor sees the same page with inline errors. Card numbers
    are never written back. `action_query` (the landing page's UTM parameters) is
    kept on the forms so the retry still carries this visit's source. None when the
    step has no live page.
    """
    pages = Page.objects.filter(step=step, published_version__isnull=False)
    page = (pages.filter(pk=page_id).first() if page_id else None) or pages.order_by(
        "id"
    ).select_related("published_version").first()
    if page is None:
        return None
    page = Page.objects.select_related("step__funnel", "published_version").get(
        pk=page.pk
    )
    funnel = page.step.funnel
    values = {k: v for k, v in values.items() if k not in SECRET_FORM_FIELDS}
    assert page.published_version is not None  # checked above
    return _render_public(
        page,
        page.published_version.document,
        list(funnel.steps.order_by("position", "id")),
        selectors.theme_for(funnel=funnel),
        form_values=values,
        form_errors=errors,
        action_query=action_query,
    )


class PublishRefused(ValidationError):
    """Publishing would put a page live that cannot sell what it shows."""

    def __init__(self, problems: list[tuple[Step, str]]) -> None:
        self.problems = problems
        super().__init__([f"Not published: {reason}" for _step, reason in problems])


class SpeedBudgetRefused(ValidationError):
    """A page is over the workspace's page-speed budget, which blocks publishing."""

    def __init__(self, page: Page, report: speed.Report) -> None:
        self.page = page
        self.report = report
        super().__init__(
            f"Not published: {page.step.name} is over the workspace's page-speed "
            f"budget (score {report.score}/100). {report.fixes[0]}"
        )


def funnel_publish(*, funnel: Funnel, user: User | None) -> list[PageVersion]:
    """Freeze every page's draft into a new immutable PageVersion rendered once.

    A refusal by the page-speed budget publishes nothing (its transaction rolls
    back) but is itself written to the audit log, in a transaction of its own."""
    try:
        return _funnel_publish(funnel=funnel, user=user)
    except SpeedBudgetRefused as refused:
        with transaction.atomic():
            audit_record(
                workspace=funnel.workspace_id,
                action="funnel.publish_refused",
                target=funnel,
                after={
                    "reason": "page-speed budget",
                    "step": refused.page.step.name,
                    "page": refused.page.pk,
                    "score": refused.report.score,
                    "over_budget": refused.report.over_budget,
                },
            )
        raise


@transaction.atomic
def _funnel_publish(*, funnel: Funnel, user: User | None) -> list[PageVersion]:
    funnel = Funnel.objects.select_for_update().get(pk=funnel.pk)
    steps = list(funnel.steps.order_by("position", "id"))
    if not steps:
        raise ValidationError("Add at least one step before publishing.")
    problems = funnel_selectors.funnel_publish_problems(funnel=funnel)
    if problems:
        raise PublishRefused(problems)
    for step in steps:
        # Freeze what each selling step offers: its page shows it, checkout charges it.
        funnel_services.step_offer_freeze(step=step)
    theme = selectors.theme_for(funnel=funnel)
    budget = selectors.speed_budget(workspace=funnel.workspace)
    reports: list[tuple[Page, speed.Report]] = []
    versions = []
    for step in steps:
        page = page_for_step(step=step)
        page = (
            Page.objects.select_for_update()
            .select_related("step__funnel")
            .get(pk=page.pk)
        )
        others = Page.objects.filter(step=step, archived_at__isnull=True).exclude(
            pk=page.pk
        )
        for variant in [page, *others]:
            number = (
                variant.versions.order_by("-number")
                .values_list("number", flat=True)
                .first()
                or 0
            ) + 1
            html = _render_public(variant, variant.document, steps, theme)
            report = speed.measure(html, budget)
            reports.append((variant, report))
            version = PageVersion.objects.create(
                workspace_id=variant.workspace_id,
                page=variant,
                number=number,
                document=variant.document,
                html=html,
                published_by=user,
                speed=report.as_dict(),
            )
            variant.published_version = version
            variant.save(update_fields=["published_version"])
            versions.append(version)
        split_test_start_if_needed(step=step)
    blocked = [(p, r) for p, r in reports if speed.is_blocked(r, budget)]
    if blocked:
        raise SpeedBudgetRefused(*blocked[0])
    was_published = funnel.published_at is not None
    funnel.published_at = timezone.now()
    funnel.save(update_fields=["published_at"])
    audit_record(
        workspace=funnel.workspace_id,
        action="funnel.publish",
        target=funnel,
        before={"published": was_published},
        after={
            "published": True,
            "versions": {str(v.page_id): v.number for v in versions},
        },
    )
    _forget_live_pages(funnel)
    return versions


def funnel_speed_check(*, funnel: Funnel) -> list[tuple[Page, speed.Report]]:
    """Measure every live variant's draft as publishing would render it, without
    publishing anything (the publish dialog shows this)."""
    steps = list(funnel.steps.order_by("position", "id"))
    theme = selectors.theme_for(funnel=funnel)
    budget = selectors.speed_budget(workspace=funnel.workspace)
    out = []
    for step in steps:
        for variant in (
            Page.objects.filter(step=step, archived_at__isnull=True)
            .select_related("step__funnel")
            .order_by("id")
        ):
            html = _render_public(variant, variant.document, steps, theme)
            out.append((variant, speed.measure(html, budget)))
    return out


SPEED_BUDGET_FIELDS = (
    "mode",
    "max_html_css_kb",
    "max_first_view_image_kb",
    "allow_blocking_scripts",
)


@transaction.atomic
def speed_budget_update(*, workspace: Workspace, data: dict[str, Any]) -> SpeedBudget:
    """Change the workspace's page-speed budget (a workspace setting: audited)."""
    budget, _ = SpeedBudget.objects.select_for_update().get_or_create(
        workspace=workspace
    )
    before = {f: getattr(budget, f) for f in SPEED_BUDGET_FIELDS}
    for key, value in data.items():
        if key not in SPEED_BUDGET_FIELDS:
            raise ValidationError(f"The page-speed budget has no setting “{key}”.")
        setattr(budget, key, value)
    budget.full_clean()
    budget.save()
    after = {f: getattr(budget, f) for f in SPEED_BUDGET_FIELDS}
    if after != before:
        audit_record(
            workspace=workspace,
            action="settings.speed_budget",
            target=workspace,
            target_label="Page-speed budget",
            before=before,
            after=after,
        )
    return budget


@transaction.atomic
def funnel_unpublish(*, funnel: Funnel) -> Funnel:
    updated = Funnel.objects.filter(pk=funnel.pk, published_at__isnull=False).update(
        published_at=None
    )
    funnel.published_at = None
    if updated:
        audit_record(
            workspace=funnel.workspace_id,
            action="funnel.unpublish",
            target=funnel,
            before={"published": True},
            after={"published": False},
        )
    _forget_live_pages(funnel)
    return funnel


@transaction.atomic
def page_rollback(*, page: Page, version: PageVersion) -> Page:
    """Serve an earlier published version again (the draft is untouched)."""
    if version.page_id != page.pk:
        raise ValidationError("That version belongs to another page.")
    if page.archived_at is not None:
        raise ValidationError(
            "This variant was removed from its split test and cannot go live again."
        )
    previous = page.published_version_id
    Page.objects.filter(pk=page.pk).update(published_version=version)
    page.published_version = version
    audit_record(
        workspace=page.workspace_id,
        action="page.rollback",
        target=page,
        before={
            "version": PageVersion.objects.filter(pk=previous or 0)
            .values_list("number", flat=True)
            .first()
        },
        after={"version": version.number},
    )
    _forget_live_pages(page.step.funnel)
    return page


# Variants and split tests ----------------------------------------------------

MAX_VARIANTS = 4
MAX_WEIGHT = 10_000
_PAGE_SETTINGS = (
    "title",
    "meta_description",
    "social_image",
    "noindex",
    "favicon",
    "head_code",
    "footer_code",
)


def _lock_step(step: Step) -> Step:
    """Serialise variant changes of one step (two tabs adding a fifth variant)."""
    return Step.objects.select_for_update().select_related("funnel").get(pk=step.pk)


def _live_variants(step: Step) -> list[Page]:
    return list(
        Page.objects.select_for_update()
        .filter(step=step, archived_at__isnull=True)
        .order_by("id")
    )


@transaction.atomic
def variant_add(*, page: Page) -> Page:
    """Duplicate a variant (document and page settings) as the step's next variant.

    The copy is a draft: it is served once the funnel is published.
    """
    step = _lock_step(page.step)
    source = Page.objects.get(pk=page.pk)
    if source.archived_at is not None:
        raise ValidationError("That variant was removed; duplicate a live one.")
    if len(_live_variants(step)) >= MAX_VARIANTS:
        raise ValidationError(
            f"A step can have at most {MAX_VARIANTS} variants. Remove one before "
            "adding another."
        )
    taken = {n.casefold() for n in step.pages.values_list("name", flat=True)}
    letters = [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    name = next(
        (f"Variant {x}" for x in letters if f"variant {x}".casefold() not in taken),
        f"Variant {len(taken) + 1}",
    )
    copy = Page.objects.create(
        workspace_id=source.workspace_id,
        step=step,
        name=name,
        weight=source.weight or 100,
        document=_fresh_ids(source.document),
        **{key: getattr(source, key) for key in _PAGE_SETTINGS},
    )
    PageRevision.objects.create(
        page=copy, number=0, document=copy.document, label=f"Copy of {source.name}"
    )
    return copy


@transaction.atomic
def variant_rename(*, page: Page, name: str) -> Page:
    name = clean_text(name or "").strip()
    if not name:
        raise ValidationError("Give the variant a name.")
    if len(name) > 80:
        raise ValidationError("Variant names are at most 80 characters.")
    _lock_step(page.step)
    clash = (
        Page.objects.filter(step_id=page.step_id, name__iexact=name)
        .exclude(pk=page.pk)
        .exists()
    )
    if clash:
        raise ValidationError(f"Another variant of this step is already called {name}.")
    Page.objects.filter(pk=page.pk).update(name=name)
    page.name = name
    return page


def split_percentages(weights: list[int]) -> list[float]:
    """The share of visitors each weight gets (weights need not sum to 100)."""
    total = sum(weights)
    return [100 * w / total if total else 0.0 for w in weights]


@transaction.atomic
def variant_weights_set(*, step: Step, weights: dict[int, Any]) -> list[Page]:
    """Set the weight of each live variant (page id → non-negative integer).

    Any integers are accepted and normalised when serving (30/30 is 50/50); at least
    one must be above zero. Variants left out keep their weight.
    """
    step = _lock_step(step)
    variants = _live_variants(step)
    by_id = {p.pk: p for p in variants}
    unknown = set(weights) - set(by_id)
    if unknown:
        raise ValidationError("A variant in the form no longer exists — reload.")
    new: dict[int, int] = {}
    for page in variants:
        raw = weights.get(page.pk, page.weight)
        try:
            value = int(str(raw).strip())
        except (TypeError, ValueError):
            raise ValidationError(
                f"The weight of {page.name} must be a whole number."
            ) from None
        if value < 0 or value > MAX_WEIGHT:
            raise ValidationError(
                f"The weight of {page.name} must be between 0 and {MAX_WEIGHT:,}."
            )
        new[page.pk] = value
    if not any(new.values()):
        raise ValidationError(
            "At least one variant needs a weight above 0, or nobody would see the step."
        )
    for page in variants:
        if page.weight != new[page.pk]:
            page.weight = new[page.pk]
            page.save(update_fields=["weight", "updated_at"])
    split_test_start_if_needed(step=step)
    _forget_live_pages(step.funnel)
    return variants


@transaction.atomic
def variant_pause(*, page: Page) -> Page:
    """Stop serving a variant (weight 0) without removing it."""
    step = _lock_step(page.step)
    variants = _live_variants(step)
    found = next((p for p in variants if p.pk == page.pk), None)
    if found is None:
        raise ValidationError("That variant was removed.")
    page = found
    if not any(p.weight > 0 for p in variants if p.pk != page.pk):
        raise ValidationError(
            f"{page.name} is the only variant being served: resume another one first."
        )
    page.weight = 0
    page.save(update_fields=["weight", "updated_at"])
    _forget_live_pages(step.funnel)
    return page


@transaction.atomic
def variant_resume(*, page: Page) -> Page:
    """Serve a paused variant again, with the average weight of the others."""
    step = _lock_step(page.step)
    variants = _live_variants(step)
    found = next((p for p in variants if p.pk == page.pk), None)
    if found is None:
        raise ValidationError("That variant was removed; it cannot be resumed.")
    page = found
    served = [p.weight for p in variants if p.weight > 0 and p.pk != page.pk]
    page.weight = round(sum(served) / len(served)) if served else 100
    page.save(update_fields=["weight", "updated_at"])
    split_test_start_if_needed(step=step)
    _forget_live_pages(step.funnel)
    return page


def _archive(page: Page, now) -> None:
    """Never served again (the serving contract: no published version, weight 0);
    the page, its versions and its events stay for the results history."""
    page.archived_at = now
    page.weight = 0
    page.published_version = None
    page.save(
        update_fields=["archived_at", "weight", "published_version", "updated_at"]
    )


@transaction.atomic
def variant_remove(*, page: Page) -> Page:
    """Remove a variant, mid-test or not: it stops being served at once."""
    step = _lock_step(page.step)
    variants = _live_variants(step)
    found = next((p for p in variants if p.pk == page.pk), None)
    if found is None:
        raise ValidationError("That variant was already removed.")
    page = found
    others = [p for p in variants if p.pk != page.pk]
    if not others:
        raise ValidationError("A step needs a page: this is its only variant.")
    if page.weight > 0 and not any(p.weight > 0 for p in others):
        raise ValidationError(
            f"{page.name} is the only variant being served: resume another one "
            "before removing it."
        )
    _archive(page, timezone.now())
    _forget_live_pages(step.funnel)
    return page


def split_test_start_if_needed(*, step: Step) -> SplitTest | None:
    """A test starts when a second variant of the step is being served (published
    with a weight above 0); it runs until a winner is declared."""
    served = Page.objects.filter(
        step=step,
        archived_at__isnull=True,
        published_version__isnull=False,
        weight__gt=0,
    ).count()
    if (
        served < 2
        or SplitTest.objects.filter(step=step, ended_at__isnull=True).exists()
    ):
        return None
    return SplitTest.objects.create(workspace_id=step.workspace_id, step=step)


@transaction.atomic
def split_test_declare_winner(
    *, step: Step, winner: Page, user: User | None
) -> SplitTest:
    """End the running test: the winner becomes the step's only served variant,
    the others are archived, and the final results are kept as a snapshot."""
    step = _lock_step(step)
    test = (
        SplitTest.objects.select_for_update()
        .filter(step=step, ended_at__isnull=True)
        .first()
    )
    if test is None:
        raise ValidationError(
            "No split test is running on this step: publish the funnel with two "
            "variants to start one."
        )
    variants = _live_variants(step)
    chosen = next((p for p in variants if p.pk == winner.pk), None)
    if chosen is None:
        raise ValidationError("Pick one of the step's current variants as the winner.")
    winner = chosen
    if step.funnel.is_published and winner.published_version_id is None:
        raise ValidationError(
            f"{winner.name} has never been published: publish the funnel first, "
            "so that the winner has a page to serve."
        )
    now = timezone.now()
    report = selectors.split_test_report(step=step, test=test)
    for page in variants:
        if page.pk != winner.pk:
            _archive(page, now)
    winner.weight = 100
    winner.save(update_fields=["weight", "updated_at"])
    test.ended_at = now
    test.winner = winner
    test.ended_by = user
    test.results = report.snapshot()
    test.save(update_fields=["ended_at", "winner", "ended_by", "results"])
    _forget_live_pages(step.funnel)
    return test


# Templates -------------------------------------------------------------------


def _unique_slug(base: str) -> str:
    base = slugify(base)[:60] or "funnel"
    slug, n = base, 2
    while Funnel.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def _fresh_ids(doc: Doc) -> Doc:
    return {"sections": [documents._reassign_ids(s) for s in doc.get("sections", [])]}


def _template_images(workspace: Workspace, doc: Doc, assets: dict[str, int]) -> Doc:
    """Template images ship as static files (``"asset": name``); a new funnel
    gets its own copies in the workspace's image library, so marketers can
    replace them like any upload. ``assets`` remembers what this funnel already
    imported."""
    for block in documents.iter_blocks(doc):
        settings_ = block.get("settings", {})
        name = settings_.pop("asset", None)
        if not name:
            continue
        if name not in assets:
            path = selectors.template_asset_path(name)
            if path is None:
                continue
            with open(path, "rb") as fh:
                upload = ContentFile(fh.read(), name=path.name)
            assets[name] = image_upload(
                workspace=workspace, upload=upload, alt_text=settings_.get("alt", "")
            ).pk
        settings_["image_id"] = assets[name]
    return doc


@transaction.atomic
def funnel_create_from_template(
    *, workspace: Workspace, user: User | None, template_key: str, name: str
) -> Funnel:
    template = selectors.funnel_template(key=template_key)
    if template is None:
        raise ValidationError("Unknown funnel template.")
    name = (name or template["name"]).strip()[:120]
    funnel = Funnel.objects.create(
        workspace=workspace, name=name, slug=_unique_slug(name)
    )
    FunnelTheme.objects.create(
        workspace=workspace, funnel=funnel, **template.get("theme", {})
    )
    steps: list[Step] = []
    assets: dict[str, int] = {}
    for position, spec in enumerate(template["steps"]):
        step = Step.objects.create(
            workspace=workspace,
            funnel=funnel,
            name=spec["name"],
            slug=spec["slug"],
            kind=spec["kind"],
            position=position,
        )
        steps.append(step)
        document = _template_images(workspace, _fresh_ids(spec["document"]), assets)
        page = page_create_blank(step=step, document=document)
        page.title = spec.get("title", spec["name"])
        page.save(update_fields=["title"])
    by_slug = {step.slug: step for step in steps}
    for step, spec in zip(steps, template["steps"], strict=True):
        step.accept_target = by_slug.get(spec.get("accept") or "")
        step.decline_target = by_slug.get(spec.get("decline") or "")
        if step.accept_target or step.decline_target:
            step.save(update_fields=["accept_target", "decline_target"])
    return funnel


# Images ----------------------------------------------------------------------

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MAX_SIDE = 12000
# Decoding needs width * height * 4 bytes at once (PNG, WebP and GIF have no
# reduced decode): 50 MP is 200 MB, and at most IMAGE_DECODE_CONCURRENCY decodes run
# in a process, so a burst of uploads cannot grow a web worker to gigabytes.
MAX_PIXELS = 50_000_000
# What is kept: the largest variant is 2400 px wide; more is never shown.
MAX_STORED_SIDE = 3200
VARIANT_WIDTHS = (480, 960, 1600, 2400)
ALLOWED_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}


class ImageRefused(ValidationError):
    """An upload refused with a message; ``status`` is the HTTP answer for it."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


class _Slots:
    """At most ``running`` decodes per process and one upload waiting for a turn;
    any more are refused at once, so uploads never hold every web thread."""

    def __init__(self, running: int, waiting: int = 1) -> None:
        self.running = threading.BoundedSemaphore(running)
        self.admitted = threading.BoundedSemaphore(running + waiting)

    @contextmanager
    def hold(self, timeout: float) -> Iterator[None]:
        busy = ImageRefused(
            "The server is busy processing other images. Please try again in a "
            "few seconds.",
            status=429,
        )
        if not self.admitted.acquire(blocking=False):
            raise busy
        try:
            if not self.running.acquire(timeout=timeout):
                raise busy
            try:
                yield
            finally:
                self.running.release()
        finally:
            self.admitted.release()


_slots_lock = threading.Lock()
_slots: _Slots | None = None


def _decode_slots() -> _Slots:
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = _Slots(settings.IMAGE_DECODE_CONCURRENCY)
        return _slots


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _load_image(
    upload: Any, *, max_side: int = MAX_STORED_SIDE
) -> tuple[Image.Image, str]:
    """Open an upload with Pillow, refusing what is not a safe, sane image.

    The header is checked first (format, size, pixels); decoding then takes one of
    the process's decode slots and produces no more than ``max_side`` px on the
    long side (JPEG decodes at 1/2, 1/4 or 1/8 scale; others are reduced right
    after decoding). Returns the EXIF-rotated RGB(A) image and its format; raises
    ImageRefused (a ValidationError) with a message for the editor.
    """
    if upload.size > MAX_UPLOAD_BYTES:
        raise ImageRefused(
            "That image is larger than 10 MB. Please upload a smaller file.",
            status=413,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            upload.seek(0)
            probe = Image.open(upload)
            fmt = probe.format
            width, height = probe.size
            if fmt not in ALLOWED_FORMATS:
                raise ImageRefused("Upload a JPEG, PNG, GIF or WebP image.")
            if max(width, height) > MAX_SIDE or width * height > MAX_PIXELS:
                raise ImageRefused(
                    f"That image is {width}×{height} px; images may be at most "
                    f"{MAX_SIDE} px on a side and {MAX_PIXELS // 1_000_000} "
                    "megapixels. Please scale it down and upload it again."
                )
            probe.verify()
            with _decode_slots().hold(settings.IMAGE_UPLOAD_WAIT_SECONDS):
                upload.seek(0)
                image: Image.Image = Image.open(upload)
                target = _fit(width, height, max_side)
                if fmt == "JPEG":
                    image.draft(None, target)  # decode at 1/2, 1/4 or 1/8 scale
                has_alpha = image.mode in ("RGBA", "LA", "PA") or (
                    image.mode == "P" and "transparency" in image.info
                )
                mode = "RGBA" if has_alpha else "RGB"
                if image.mode != mode:
                    image = image.convert(mode)
                image.thumbnail(target, Image.Resampling.LANCZOS, reducing_gap=2.0)
                return ImageOps.exif_transpose(image), fmt
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRefused("That image is too large to process safely.") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ImageRefused("That file is not a valid image.") from None


def image_upload(
    *, workspace: Workspace, upload: Any, alt_text: str = ""
) -> ImageAsset:
    """Validate with Pillow, strip EXIF, store the image (at most MAX_STORED_SIDE
    px) plus WebP variants.

    Raises ImageRefused (a ValidationError) with a message for the editor; nothing
    is stored then.
    """
    image, fmt = _load_image(upload)
    stem = uuid.uuid4().hex
    ext = {"JPEG": "jpg", "PNG": "png", "GIF": "png", "WEBP": "webp"}[fmt]
    # Re-encode without metadata (drops EXIF/GPS).
    buf = io.BytesIO()
    save_fmt = "JPEG" if ext == "jpg" else ("WEBP" if ext == "webp" else "PNG")
    image.save(buf, save_fmt, quality=90) if save_fmt != "PNG" else image.save(
        buf, "PNG", optimize=True
    )
    month = timezone.now().strftime("%Y/%m")
    stored: list[str] = []
    try:
        original = default_storage.save(
            f"images/{month}/{stem}.{ext}", ContentFile(buf.getvalue())
        )
        stored.append(original)
        variants: dict[str, str] = {}
        # Every standard width below the original, then the original's own width
        # (capped at the largest standard width), so a 1600-px image is offered
        # at 480, 960 and 1600 and full-width layouts get full resolution.
        widths = [w for w in VARIANT_WIDTHS if w < image.width]
        widths.append(min(image.width, VARIANT_WIDTHS[-1]))
        for w in widths:
            target = (
                image
                if w >= image.width
                else image.resize(
                    (w, max(1, round(image.height * w / image.width))),
                    Image.Resampling.LANCZOS,
                )
            )
            vbuf = io.BytesIO()
            target.save(vbuf, "WEBP", quality=80, method=4)
            path = default_storage.save(
                f"images/{month}/{stem}-{w}.webp", ContentFile(vbuf.getvalue())
            )
            stored.append(path)
            variants[str(w)] = path
        return ImageAsset.objects.create(
            workspace=workspace,
            original=original,
            variants=variants,
            width=image.width,
            height=image.height,
            alt_text=clean_text(alt_text)[:300],
        )
    except Exception:
        for path in stored:
            default_storage.delete(path)
        raise


FAVICON_SIZE = 64


def page_favicon_upload(*, page: Page, upload: Any) -> Page:
    """Store a square 64-px PNG made from the upload as the page's favicon."""
    image, _ = _load_image(upload, max_side=FAVICON_SIZE * 4)
    image = ImageOps.fit(
        image.convert("RGBA"),
        (FAVICON_SIZE, FAVICON_SIZE),
        Image.Resampling.LANCZOS,
    )
    buf = io.BytesIO()
    image.save(buf, "PNG", optimize=True)
    path = default_storage.save(
        f"icons/{uuid.uuid4().hex}.png", ContentFile(buf.getvalue())
    )
    page.favicon = default_storage.url(path)
    page.save(update_fields=["favicon", "updated_at"])
    return page


SOCIAL_WIDTH = 1600


def page_social_image_upload(*, page: Page, upload: Any, base_url: str) -> Page:
    """Store the upload as an image and use its largest variant up to 1600 px as
    the page's social (Open Graph) image; ``base_url`` makes it absolute."""
    image = image_upload(workspace=page.workspace, upload=upload)
    widths = sorted((int(w) for w in image.variants), reverse=True)
    width = next((w for w in widths if w <= SOCIAL_WIDTH), widths[-1])
    url = default_storage.url(image.variants[str(width)])
    page.social_image = urljoin(base_url, url)
    page.save(update_fields=["social_image", "updated_at"])
    return page


def image_update_alt(*, image: ImageAsset, alt_text: str) -> ImageAsset:
    image.alt_text = clean_text(alt_text)[:300]
    image.save(update_fields=["alt_text"])
    return image


# Custom domains --------------------------------------------------------------

_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def domain_normalise(host: str) -> str:
    """A host name as stored: lower-case IDNA (punycode), no scheme, port or dot.

    Raises ValidationError with a message a person can act on.
    """
    value = (host or "").strip().lower()
    if "://" in value:
        value = value.split("://", 1)[1]
    value = value.split("/", 1)[0].rstrip(".")
    if not value:
        raise ValidationError("Enter a domain name, like shop.example.com.")
    if ":" in value or "@" in value:
        raise ValidationError("Enter the domain name only, without a port or user.")
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValidationError(f"{host[:80]!r} is not a valid domain name.") from None
    labels = value.split(".")
    if (
        len(value) > 253
        or len(labels) < 2
        or not all(_LABEL_RE.match(label) for label in labels)
        or labels[-1].isdigit()
    ):
        raise ValidationError(
            f"{host[:80]!r} is not a valid domain name (like shop.example.com)."
        )
    return value


def app_hosts() -> set[str]:
    """The app's own host names, which no funnel may claim."""
    from urllib.parse import urlsplit

    exact = {
        h.lower() for h in settings.APP_HOSTS if not h.startswith(".") and h != "*"
    }
    site = urlsplit(settings.SITE_URL).hostname
    return exact | ({site.lower()} if site else set()) | {"localhost"}


@transaction.atomic
def domain_add(*, workspace: Workspace, host: str, funnel: Funnel) -> Domain:
    if funnel.workspace_id != workspace.pk:
        raise ValidationError("Choose one of your funnels.")
    name = domain_normalise(host)
    if name in app_hosts():
        raise ValidationError(
            f"{name} is this app's own address; use a domain of your own."
        )
    public = settings.PUBLIC_DOMAIN.split(":", 1)[0]
    if name == public or name.endswith("." + public):
        raise ValidationError(
            f"{name} is under {public}, where every workspace already has its own "
            "address; use a domain of your own."
        )
    existing = Domain.objects.filter(host=name).first()
    if existing is not None:
        if existing.workspace_id == workspace.pk:
            raise ValidationError(
                f"{name} is already connected to {existing.funnel.name}."
            )
        raise ValidationError(f"{name} is already used by another workspace.")
    try:
        with transaction.atomic():
            domain = Domain.objects.create(
                workspace=workspace, host=name, funnel=funnel
            )
    except IntegrityError:  # added by someone else a moment ago
        raise ValidationError(f"{name} is already used.") from None
    audit_record(
        workspace=workspace,
        action="domain.add",
        target=domain,
        target_label=name,
        after={"host": name, "funnel": funnel.name},
    )
    _forget_live_pages()
    return domain


@transaction.atomic
def domain_delete(*, domain: Domain) -> None:
    audit_record(
        workspace=domain.workspace_id,
        action="domain.delete",
        target=domain,
        target_label=domain.host,
        before={"host": domain.host},
    )
    domain.delete()
    _forget_live_pages()
