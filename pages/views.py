from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import format_html
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import reswap, retarget

from accounts.models import Role
from accounts.tenancy import workspace_view
from funnels import offers
from funnels.models import Funnel

from . import (
    blocks,
    documents,
    rendering,
    selectors,
    services,
    speed,
    styles,
    themes,
)
from .documents import Doc
from .forms import (
    ImageUploadForm,
    PageSettingsForm,
    SpeedBudgetForm,
    TemplateCreateForm,
    ThemeForm,
)
from .models import ImageAsset, Page, SpeedBudget
from .rendering import RenderContext, render_block, render_document
from .split_views import variant_rows

EDITOR = "pages/editor.html"


# Helpers ---------------------------------------------------------------------


def _revision(request: HttpRequest) -> int | None:
    value = request.POST.get("revision", "")
    return int(value) if value.isdigit() else None


def _render_ctx(
    page: Page,
    doc: Doc,
    selected_id: str | None = None,
    request: HttpRequest | None = None,
) -> RenderContext:
    # The canvas previews the step's current offer (what the next publish freezes).
    selling = page.step.kind in offers.SELLING_KINDS
    current = offers.current_offer(page.step) if selling else None
    preview = offers.offer_snapshot(current) if current is not None else None
    return RenderContext(
        request=request,
        selected_id=selected_id,
        page=page,
        editor=True,
        next_url="#",
        form_action="#",
        images=selectors.images_for(
            workspace_id=page.workspace_id, ids=documents.image_ids(doc)
        ),
        offer=preview,
        merge=offers.merge_values(preview),
    )


def _step_choices(page: Page) -> list[tuple[str, str]]:
    return [
        (str(s.pk), s.name) for s in selectors.funnel_steps(funnel=page.step.funnel)
    ]


def _settings_form(page: Page, block: dict[str, Any], data: Any = None):
    bt = blocks.get(block["type"])
    return bt, blocks.settings_form(
        bt,
        data=data,
        initial=blocks.settings_with_defaults(block),
        step_choices=_step_choices(page),
    )


def _editor_context(
    page: Page,
    *,
    selected: str | None = None,
    request: HttpRequest | None = None,
    with_canvas: bool = True,
) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    can_edit = membership is None or membership.can_edit
    render_ctx = _render_ctx(page, page.document, selected, request)
    if not can_edit:
        # A viewer gets the page as visitors see it, without the editing chrome.
        render_ctx.editor = False
    ctx: dict[str, Any] = {
        "page": page,
        "step": page.step,
        "funnel": page.step.funnel,
        "can_edit": can_edit,
        "canvas": render_document(page.document, render_ctx) if with_canvas else "",
        "palette": blocks.groups(),
        "can_undo": page.history_pointer > 0,
        "can_redo": page.revisions.filter(number__gt=page.history_pointer).exists(),
        "selected": None,
        "theme": selectors.theme_for(funnel=page.step.funnel),
    }
    if selected and can_edit:
        block = documents.find_block(page.document, selected)
        if block is not None:
            bt, form = _settings_form(page, block)
            ctx.update(
                selected=block,
                block_type=bt,
                form=form,
                image=_block_image(page, block),
                style=styles.form_context(block.get("style")),
            )
    return ctx


def _block_image(page: Page, block: dict[str, Any]) -> ImageAsset | None:
    image_id = block.get("settings", {}).get("image_id")
    if not image_id:
        return None
    return ImageAsset.objects.filter(
        workspace_id=page.workspace_id, pk=image_id
    ).first()


def _error(
    request: HttpRequest, page: Page, message: str, status: int | None = None
) -> HttpResponse:
    """The editor's alert says what went wrong; with ``status`` the answer is that
    4xx (htmx swaps 413/422/429, see _base.html) instead of a redirect."""
    if request.htmx:
        response = render(
            request,
            f"{EDITOR}#alert",
            {"alert": message, "page": page},
            status=status or 200,
        )
        return reswap(retarget(response, "#editor-alert"), "innerHTML")
    messages.error(request, message)
    if status is None:
        return redirect("pages:editor", pk=page.pk)
    response = editor(request, pk=page.pk)
    response.status_code = status
    return response


def _canvas_response(
    request: HttpRequest, page: Page, *, selected: str | None = None
) -> HttpResponse:
    if request.htmx:
        return render(
            request,
            f"{EDITOR}#canvas-swap",
            _editor_context(page, request=request, selected=selected),
        )
    url = reverse("pages:editor", args=[page.pk])
    return redirect(f"{url}?block={selected}" if selected else url)


def _edit_and_swap(
    request: HttpRequest,
    page: Page,
    *,
    operation: Callable[[Doc], Doc],
    label: str,
    block_id: str = "",
    section_id: str = "",
    with_pane: bool = False,
    group: str = "",
) -> HttpResponse:
    """Apply one edit to the draft and answer as the editor expects: the alert
    when it is refused (an operation may raise ValidationError for bad input);
    else the changed block or section re-rendered (htmx), or the editor with it
    selected (a plain form post)."""
    try:
        page = services.page_edit(
            page=page,
            revision=_revision(request),
            operation=operation,
            label=label,
            group=group,
        )
    except ValidationError as exc:
        return _error(request, page, exc.messages[0])
    if section_id:
        return _section_swap(request, page, section_id, with_pane=with_pane)
    if not request.htmx:
        return redirect(f"{reverse('pages:editor', args=[page.pk])}?block={block_id}")
    return _block_swap(request, page, block_id)


# Entry points ----------------------------------------------------------------


@workspace_view
def step_edit(request: HttpRequest, step_pk: int) -> HttpResponse:
    """Open the step's page in the editor, creating a blank one the first time."""
    step = selectors.step_get(workspace=request.workspace, pk=step_pk)
    page = step.pages.filter(archived_at__isnull=True).order_by("id").first()
    if page is None:
        if not request.membership.can_edit:
            raise Http404("This step has no page yet.")
        page = services.page_create_blank(step=step)
    return redirect("pages:editor", pk=page.pk)


@workspace_view
def editor(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    ctx = _editor_context(page, request=request, selected=request.GET.get("block"))
    section = documents.find_section(page.document, request.GET.get("section", ""))
    if section is not None and ctx["can_edit"] and not ctx["selected"]:
        ctx.update(_section_context(page, section))
    ctx.update(
        variants=variant_rows(selectors.step_variants(step=page.step)),
        max_variants=services.MAX_VARIANTS,
        split_running=selectors.split_test_running(step=page.step),
    )
    return render(request, EDITOR, ctx)


@workspace_view
def block_settings(request: HttpRequest, pk: int, block_id: str) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    if not request.htmx:
        return redirect(f"{reverse('pages:editor', args=[pk])}?block={block_id}")
    ctx = _editor_context(page, request=request, selected=block_id, with_canvas=False)
    return render(request, f"{EDITOR}#settings", ctx)


# Edits -----------------------------------------------------------------------


def _int(request: HttpRequest, key: str, default: int = 0) -> int:
    try:
        return int(request.POST.get(key, default))
    except (TypeError, ValueError):
        return default


def _structural(
    request: HttpRequest,
) -> tuple[Callable[[Doc], Doc], str, str | None] | None:
    """Map a POSTed action to a pure document operation."""
    action = request.POST.get("action", "")
    p = request.POST
    bid, sid, rid = p.get("block_id", ""), p.get("section_id", ""), p.get("row_id", "")
    delta = -1 if action.endswith("_up") else 1
    action = {
        "block_up": "shift_block",
        "block_down": "shift_block",
        "section_up": "shift_section",
        "section_down": "shift_section",
        "row_up": "shift_row",
        "row_down": "shift_row",
    }.get(action, action)

    if action == "add_block":
        bt = blocks.get(p.get("type", ""))
        block = documents.new_block(bt.key, bt.defaults())
        return (
            lambda d: documents.add_block(
                d,
                block,
                after_block_id=bid or None,
                column_id=p.get("column_id") or None,
            ),
            f"Added {bt.label.lower()}",
            block["id"],
        )
    if action == "delete_block":
        return (lambda d: documents.delete_block(d, bid), "Deleted block", None)
    if action == "duplicate_block":
        return (
            lambda d: documents.duplicate_block(d, bid)[0],
            "Duplicated block",
            None,
        )
    if action == "shift_block":
        return (lambda d: documents.shift_block(d, bid, delta), "Moved block", bid)
    if action == "move_block":
        return (
            lambda d: documents.move_block(
                d, bid, column_id=p.get("column_id", ""), index=_int(request, "index")
            ),
            "Moved block",
            bid,
        )
    if action == "add_section":
        cols = max(1, min(4, _int(request, "columns", 1)))
        return (
            lambda d: documents.add_section(
                d, after_section_id=sid or None, columns=cols
            )[0],
            "Added section",
            None,
        )
    if action == "delete_section":
        return (lambda d: documents.delete_section(d, sid), "Deleted section", None)
    if action == "duplicate_section":
        return (
            lambda d: documents.duplicate_section(d, sid)[0],
            "Duplicated section",
            None,
        )
    if action == "shift_section":
        return (lambda d: documents.move_section(d, sid, delta), "Moved section", None)
    if action == "section_settings":
        bg = p.get("background", "white")
        width = p.get("width", "md")
        if bg not in SECTION_BACKGROUNDS or width not in SECTION_WIDTHS:
            raise ValidationError("Unknown section style.")
        return (
            lambda d: documents.update_section(
                d, sid, {"background": bg, "width": width}
            ),
            "Section style",
            None,
        )
    if action == "add_row":
        cols = max(1, min(4, _int(request, "columns", 1)))
        return (lambda d: documents.add_row(d, sid, columns=cols)[0], "Added row", None)
    if action == "delete_row":
        return (lambda d: documents.delete_row(d, rid), "Deleted row", None)
    if action == "duplicate_row":
        return (lambda d: documents.duplicate_row(d, rid)[0], "Duplicated row", None)
    if action == "shift_row":
        return (lambda d: documents.move_row(d, rid, delta), "Moved row", None)
    if action == "row_columns":
        cols = _int(request, "columns", 1)
        return (
            lambda d: documents.set_row_columns(d, rid, cols),
            "Changed columns",
            None,
        )
    return None


SECTION_BACKGROUNDS = dict(rendering.SECTION_BACKGROUNDS)
SECTION_WIDTHS = dict(rendering.SECTION_WIDTHS)


@require_POST
@workspace_view
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Every structural edit (add/move/duplicate/delete of blocks, rows, sections)."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    try:
        op = _structural(request)
        if op is None:
            return _error(request, page, "Unknown editor action.")
        operation, label, selected = op
        old_doc = page.document
        page = services.page_edit(
            page=page, revision=_revision(request), operation=operation, label=label
        )
    except ValidationError as exc:
        return _error(request, page, exc.messages[0])
    if selected and documents.find_block(page.document, selected) is None:
        selected = None
    action = request.POST.get("action", "")
    if request.htmx and action in ("block_up", "block_down", "move_block") and selected:
        return _columns_response(request, page, old_doc, selected)
    return _canvas_response(request, page, selected=selected)


@require_POST
@workspace_view
def block_update(request: HttpRequest, pk: int, block_id: str) -> HttpResponse:
    """Save the settings form of one block; re-render only that block."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    block = documents.find_block(page.document, block_id)
    if block is None:
        return _error(request, page, "That block no longer exists — reload the page.")
    bt, form = _settings_form(page, block, data=request.POST)
    if not form.is_valid():
        if request.htmx:
            ctx = _editor_context(
                page, request=request, selected=block_id, with_canvas=False
            )
            ctx["form"] = form
            response = render(request, f"{EDITOR}#settings", ctx)
            return reswap(retarget(response, "#settings-pane"), "innerHTML")
        messages.error(request, "Please fix the highlighted settings.")
        return redirect(f"{reverse('pages:editor', args=[pk])}?block={block_id}")
    new_settings = blocks.clean_settings(bt, form.cleaned_data)
    return _edit_and_swap(
        request,
        page,
        operation=lambda d: documents.update_block(d, block_id, new_settings),
        label=f"Edited {bt.label.lower()}",
        block_id=block_id,
    )


def _block_swap(request: HttpRequest, page: Page, block_id: str) -> HttpResponse:
    """The re-rendered block plus the new revision and undo state."""
    block = documents.find_block(page.document, block_id)
    single = {"sections": [{"rows": [{"columns": [{"blocks": [block]}]}]}]}
    html = render_block(block, _render_ctx(page, single, block_id, request))
    return render(
        request,
        f"{EDITOR}#block-swap",
        {
            "page": page,
            "block": block,
            "html": html,
            "can_undo": True,
            "can_redo": False,
        },
    )


ALIGNABLE = ("left", "center", "right")


@require_POST
@workspace_view
def block_inplace(request: HttpRequest, pk: int, block_id: str) -> HttpResponse:
    """Text typed on the canvas (headline, text, button label, list items).

    Cleaned like the settings form; edits of one typing session (``session``)
    fold into one undo step. ``align`` sets the block's alignment setting.
    """
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    block = documents.find_block(page.document, block_id)
    if block is None:
        return _error(request, page, "That block no longer exists — reload the page.")
    bt = blocks.get(block["type"])
    name = request.POST.get("field", "")
    session = request.POST.get("session", "")[:40]
    changes: dict[str, Any] = {}
    if name == "align":
        value = request.POST.get("value", "")
        if value not in ALIGNABLE or "align" not in bt.defaults():
            return _error(request, page, "That block cannot be aligned that way.")
        changes["align"] = value
    else:
        field = blocks.inplace_field(bt, name)
        if field is None:
            return _error(request, page, "That text cannot be edited on the canvas.")
        value = request.POST.get("value", "")
        if len(value) > 50_000:
            return _error(request, page, "That text is too long (50,000 characters).")
        changes[name] = blocks.clean_inplace(field, value)
    return _edit_and_swap(
        request,
        page,
        operation=lambda d: documents.update_block(d, block_id, changes),
        label=f"Typed in {bt.label.lower()}",
        block_id=block_id,
        group=f"{block_id}:{session}" if session else "",
    )


@require_POST
@workspace_view
def block_style(request: HttpRequest, pk: int, block_id: str) -> HttpResponse:
    """Save a block's style panel (colours, spacing, alignment, visibility...)."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    block = documents.find_block(page.document, block_id)
    if block is None:
        return _error(request, page, "That block no longer exists — reload the page.")

    def restyle(doc: Doc) -> Doc:
        # Cleaned here, so a refused style is answered like any refused edit.
        style = styles.clean_block_style(styles.from_post(request.POST))
        return documents.set_block_style(doc, block_id, style)

    return _edit_and_swap(
        request,
        page,
        operation=restyle,
        label=f"Styled {blocks.get(block['type']).label.lower()}",
        block_id=block_id,
    )


def _section_context(page: Page, section: dict[str, Any]) -> dict[str, Any]:
    settings = section.get("settings", {})
    image = None
    if settings.get("bg_image"):
        image = selectors.images_for(
            workspace_id=page.workspace_id, ids={int(settings["bg_image"])}
        ).get(int(settings["bg_image"]))
    return {
        "section": section,
        "s": settings,
        "image_thumb": image.url_at(480) if image else "",
        "tokens": [(k, n, c) for k, (n, c) in styles.COLOR_TOKENS.items()],
        "section_backgrounds": rendering.SECTION_BACKGROUNDS,
        "section_widths": rendering.SECTION_WIDTHS,
        "paddings": list(styles.SECTION_PADDING.items()),
        "overlays": list(styles.OVERLAYS.items()),
    }


@workspace_view
def section_settings(request: HttpRequest, pk: int, section_id: str) -> HttpResponse:
    """The section's style pane (background, image, padding, visibility)."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    if not request.htmx:
        return redirect(f"{reverse('pages:editor', args=[pk])}?section={section_id}")
    section = documents.find_section(page.document, section_id)
    if section is None:
        return _error(request, page, "That section no longer exists — reload.")
    ctx = {"page": page, **_section_context(page, section)}
    return render(request, "pages/editor/_section_settings.html", ctx)


def _section_swap(
    request: HttpRequest, page: Page, section_id: str, *, with_pane: bool
) -> HttpResponse:
    if not request.htmx:
        url = reverse("pages:editor", args=[page.pk])
        return redirect(f"{url}?section={section_id}")
    section = documents.find_section(page.document, section_id)
    single = {"sections": [section]}
    html = render_document(single, _render_ctx(page, single, None, request))
    ctx = {
        "page": page,
        "html": html,
        "can_undo": True,
        "can_redo": False,
        "with_pane": with_pane,
        **_section_context(page, section),
    }
    return render(request, f"{EDITOR}#section-swap", ctx)


@require_POST
@workspace_view
def section_style(request: HttpRequest, pk: int, section_id: str) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    p = request.POST

    def restyle(doc: Doc) -> Doc:
        background = p.get("background", "white")
        width = p.get("width", "md")
        if background not in SECTION_BACKGROUNDS or width not in SECTION_WIDTHS:
            raise ValidationError("Unknown section background or width.")
        data = dict(p.items())
        if not p.get("bg_color_on"):
            data["bg_color"] = ""
        extra = styles.clean_section_style(data)
        return documents.update_section(
            doc, section_id, {"background": background, "width": width, **extra}
        )

    return _edit_and_swap(
        request, page, operation=restyle, label="Section style", section_id=section_id
    )


@require_POST
@workspace_view
def section_image(request: HttpRequest, pk: int, section_id: str) -> HttpResponse:
    """Upload (or remove) a section's background image."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    try:
        if documents.find_section(page.document, section_id) is None:
            raise ValidationError("That section no longer exists — reload.")
        if request.POST.get("remove"):
            image_id = None
        else:
            form = ImageUploadForm(request.POST, request.FILES)
            if not form.is_valid():
                raise ValidationError("Choose an image file to upload.")
            image_id = services.image_upload(
                workspace=request.workspace, upload=form.cleaned_data["image"]
            ).pk
    except ValidationError as exc:
        return _error(request, page, exc.messages[0])
    return _edit_and_swap(
        request,
        page,
        operation=lambda d: documents.update_section(
            d, section_id, {"bg_image": image_id}
        ),
        label="Section image" if image_id else "Removed section image",
        section_id=section_id,
        with_pane=True,
    )


def _column_of(doc: Doc, block_id: str) -> dict[str, Any] | None:
    for section in doc.get("sections", []):
        for row in section["rows"]:
            for column in row["columns"]:
                if any(b["id"] == block_id for b in column["blocks"]):
                    return column
    return None


def _columns_response(
    request: HttpRequest, page: Page, old_doc: Doc, block_id: str
) -> HttpResponse:
    """After a move, re-render only the column(s) it left and entered."""
    ids = []
    for doc in (old_doc, page.document):
        column = _column_of(doc, block_id)
        if column is not None and column["id"] not in ids:
            ids.append(column["id"])
    columns = [documents._column(page.document, cid) for cid in ids]
    moved = {"sections": [{"rows": [{"columns": columns}]}]}
    ctx = _render_ctx(page, moved, block_id, request)
    payload = [(c["id"], [render_block(b, ctx) for b in c["blocks"]]) for c in columns]
    response = render(
        request,
        f"{EDITOR}#columns-swap",
        {"page": page, "columns": payload, "can_undo": True, "can_redo": False},
    )
    return reswap(response, "none")


@require_POST
@workspace_view
def history(request: HttpRequest, pk: int, direction: str) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    try:
        if direction == "undo":
            page = services.page_undo(page=page, revision=_revision(request))
        elif direction == "redo":
            page = services.page_redo(page=page, revision=_revision(request))
        else:
            raise Http404
    except ValidationError as exc:
        return _error(request, page, exc.messages[0])
    return _canvas_response(request, page)


# Images ----------------------------------------------------------------------


@require_POST
@workspace_view
def image_upload(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    form = ImageUploadForm(request.POST, request.FILES)
    block_id = request.POST.get("block_id", "")
    if not form.is_valid():
        return _error(request, page, "Choose an image file to upload.", 422)
    block = documents.find_block(page.document, block_id)
    if block is None or "image_id" not in blocks.get(block["type"]).defaults():
        return _error(request, page, "Select an image block first.", 422)
    try:
        image = services.image_upload(
            workspace=request.workspace,
            upload=form.cleaned_data["image"],
            alt_text=request.POST.get("alt", ""),
        )
        page = services.page_edit(
            page=page,
            revision=_revision(request),
            operation=lambda d: documents.update_block(
                d, block_id, {"image_id": image.pk}
            ),
            label="Uploaded image",
        )
    except ValidationError as exc:
        status = exc.status if isinstance(exc, services.ImageRefused) else 422
        return _error(request, page, exc.messages[0], status)
    return _canvas_response(request, page, selected=block_id)


# Page settings, theme, versions, publish --------------------------------------


@require_http_methods(["GET", "POST"])
@workspace_view
def page_settings(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    form = PageSettingsForm(request.POST or None, request.FILES or None, instance=page)
    status = 200
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        favicon = data.pop("favicon_upload", None)
        social = data.pop("social_image_upload", None)
        try:
            with transaction.atomic():
                page = services.page_update_settings(page=page, data=data)
                if favicon:
                    page = services.page_favicon_upload(page=page, upload=favicon)
                if social:
                    page = services.page_social_image_upload(
                        page=page,
                        upload=social,
                        base_url=request.build_absolute_uri("/"),
                    )
        except ValidationError as exc:
            # A refused image answers 413/422/429 with the reason, like the editor.
            status = exc.status if isinstance(exc, services.ImageRefused) else 422
            form.add_error(
                "favicon_upload" if favicon else "social_image_upload", exc.messages[0]
            )
        else:
            messages.success(request, "Page settings saved.")
            return redirect("pages:editor", pk=page.pk)
    return render(
        request,
        "pages/page_settings.html",
        {"page": page, "form": form, "funnel": page.step.funnel},
        status=status if status != 200 else (422 if form.errors else 200),
    )


@require_http_methods(["GET", "POST"])
@workspace_view
def theme(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    theme_obj = selectors.theme_for(funnel=page.step.funnel)
    preset_key = request.POST.get("preset")
    if request.method == "POST" and preset_key is not None:
        preset = themes.PRESETS.get(preset_key)
        if preset is None:
            messages.error(request, "That theme preset does not exist.")
            return redirect("pages:theme", pk=page.pk)
        services.theme_update(funnel=page.step.funnel, data=preset.values())
        messages.success(request, f"{preset.name} theme applied to every page.")
        return redirect("pages:editor", pk=page.pk)
    form = ThemeForm(request.POST or None, instance=theme_obj)
    if request.method == "POST" and form.is_valid():
        services.theme_update(funnel=page.step.funnel, data=form.cleaned_data)
        messages.success(request, "Funnel theme saved.")
        return redirect("pages:editor", pk=page.pk)
    return render(
        request,
        "pages/theme.html",
        {
            "page": page,
            "form": form,
            "funnel": page.step.funnel,
            "presets": themes.PRESETS.values(),
            "fonts": themes.FONTS.values(),
            "current": theme_obj,
        },
    )


@workspace_view
def versions(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    return render(
        request,
        "pages/versions.html",
        {
            "page": page,
            "versions": selectors.page_versions(page=page),
            "funnel": page.step.funnel,
        },
    )


@require_POST
@workspace_view
def version_action(
    request: HttpRequest, pk: int, version_pk: int, action: str
) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    version = get_object_or_404(page.versions, pk=version_pk)
    try:
        if action == "restore":
            services.page_restore_version(page=page, version=version, revision=None)
            messages.success(
                request, f"Version {version.number} restored into the draft."
            )
            return redirect("pages:editor", pk=page.pk)
        if action == "rollback":
            services.page_rollback(page=page, version=version)
            messages.success(request, f"Version {version.number} is live again.")
            return redirect("pages:versions", pk=page.pk)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return redirect("pages:versions", pk=page.pk)
    raise Http404


@workspace_view
def publish_check(request: HttpRequest, pk: int) -> HttpResponse:
    """The publish dialog: each page's speed score and top fixes, then Publish."""
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    funnel = page.step.funnel
    budget = selectors.speed_budget(workspace=request.workspace)
    reports = services.funnel_speed_check(funnel=funnel)
    ctx = {
        "page": page,
        "funnel": funnel,
        "reports": reports,
        "budget": budget,
        "variants_shown": len({p.step_id for p, _ in reports}) < len(reports),
        "over": any(r.over_budget for _, r in reports),
        "blocked": any(speed.is_blocked(r, budget) for _, r in reports),
        "can_edit": request.membership.can_edit,
    }
    template = "pages/publish_check.html"
    return render(request, f"{template}#check" if request.htmx else template, ctx)


@require_http_methods(["GET", "POST"])
@workspace_view(write_role=Role.ADMIN)
def speed_budget(request: HttpRequest) -> HttpResponse:
    """Workspace settings → Page speed: the budget publishing is checked against."""
    instance = SpeedBudget.objects.filter(workspace=request.workspace).first()
    form = SpeedBudgetForm(request.POST or None, instance=instance or SpeedBudget())
    if request.method == "POST" and form.is_valid():
        services.speed_budget_update(
            workspace=request.workspace, data=form.cleaned_data
        )
        messages.success(request, "Page-speed budget saved.")
        return redirect("pages:speed_budget")
    return render(request, "pages/speed_budget.html", {"form": form, "tab": "speed"})


@require_POST
@workspace_view
def publish(request: HttpRequest, pk: int) -> HttpResponse:
    page = selectors.page_get(workspace=request.workspace, pk=pk)
    funnel = page.step.funnel
    try:
        if request.POST.get("action") == "unpublish":
            services.funnel_unpublish(funnel=funnel)
            messages.success(request, "Funnel unpublished. Its pages now return 404.")
        else:
            services.funnel_publish(funnel=funnel, user=request.user)
            messages.success(
                request, f"Published! Live at {funnel.public_url(page.step)}"
            )
    except services.PublishRefused as exc:
        _publish_refused(request, exc)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("pages:editor", pk=page.pk)


def _publish_refused(request: HttpRequest, exc: services.PublishRefused) -> None:
    """Say why, with a link to fix each step."""
    for step, reason in exc.problems:
        messages.error(
            request,
            format_html(
                'Not published: {} <a href="{}">Set the offer of “{}”</a>',
                reason,
                reverse("leads:step_offer", args=[step.pk]),
                step.name,
            ),
        )


# Templates -------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@workspace_view
def template_gallery(request: HttpRequest) -> HttpResponse:
    form = TemplateCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            funnel = services.funnel_create_from_template(
                workspace=request.workspace,
                user=request.user,
                template_key=form.cleaned_data["template"],
                name=form.cleaned_data["name"],
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages[0])
        else:
            messages.success(request, f"“{funnel.name}” created from the template.")
            first = funnel.steps.order_by("position", "id").first()
            return redirect("pages:step_edit", step_pk=first.pk)
    return render(
        request,
        "pages/template_gallery.html",
        {"templates": selectors.funnel_templates().values(), "form": form},
    )


@workspace_view
def template_preview(request: HttpRequest, key: str, index: int = 0) -> HttpResponse:
    template = selectors.funnel_template(key=key)
    if template is None or index >= len(template["steps"]):
        raise Http404
    spec = template["steps"][index]
    theme_obj = services.FunnelTheme(**template.get("theme", {}))
    doc, images = selectors.template_preview_document(spec["document"])
    body = render_document(doc, RenderContext(images=images))
    return render(
        request,
        "pages/template_preview.html",
        {
            "template": template,
            "spec": spec,
            "index": index,
            "body": body,
            "theme": theme_obj,
        },
    )


@require_POST
@workspace_view
def funnel_publish(request: HttpRequest, funnel_pk: int) -> HttpResponse:
    """Publish or unpublish a whole funnel from its funnel page."""
    funnel = get_object_or_404(Funnel, pk=funnel_pk, workspace=request.workspace)
    try:
        if request.POST.get("action") == "unpublish":
            services.funnel_unpublish(funnel=funnel)
            messages.success(request, "Funnel unpublished. Its pages now return 404.")
        else:
            services.funnel_publish(funnel=funnel, user=request.user)
            first = funnel.steps.order_by("position", "id").first()
            messages.success(request, f"Published! Live at {funnel.public_url(first)}")
    except services.PublishRefused as exc:
        _publish_refused(request, exc)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    return redirect("funnels:detail", pk=funnel.pk)
