from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from pages import documents
from pages.models import ImageAsset, Page
from tests.factories import StepFactory
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def page(workspace):
    return page_with_blocks("headline", "text", "image", workspace=workspace)


def _ids(page):
    return [
        b["id"] for b in documents.iter_blocks(Page.objects.get(pk=page.pk).document)
    ]


def test_editor_full_page(owner_client, page):
    """The editor shows the palette, the canvas with every block and empty settings."""
    response = owner_client.get(reverse("pages:editor", args=[page.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('class="pb-block-bar"') == 3
    assert 'id="rev" name="revision" value="0"' in html
    assert "Select a block" in html


def test_block_settings_fragment_and_full_page_fallback(owner_client, page):
    block_id = _ids(page)[0]
    url = reverse("pages:block_settings", args=[page.pk, block_id])
    fragment = owner_client.get(url, **HX)
    assert fragment.status_code == 200
    assert "<html" not in fragment.content.decode()
    assert 'name="text"' in fragment.content.decode()
    full = owner_client.get(url)
    assert full.status_code == 302
    assert full.url == reverse("pages:editor", args=[page.pk]) + f"?block={block_id}"
    assert 'name="text"' in owner_client.get(full.url).content.decode()


def test_block_update_returns_only_the_block(owner_client, page):
    """Saving settings re-renders just that block plus the new revision."""
    block_id = _ids(page)[0]
    response = owner_client.post(
        reverse("pages:block_update", args=[page.pk, block_id]),
        {
            "text": "Hello <script>x()</script>world",
            "size": "xl",
            "align": "center",
            "revision": 0,
        },
        **HX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.startswith(f'<div class="pb-block is-selected" id="block-{block_id}"')
    assert "Hello world</h1>" in html
    assert 'id="rev" name="revision" value="1" hx-swap-oob="true"' in html
    assert (
        documents.find_block(Page.objects.get(pk=page.pk).document, block_id)[
            "settings"
        ]["text"]
        == "Hello world"
    )


def test_block_update_invalid_shows_errors(owner_client, page):
    block_id = _ids(page)[0]
    response = owner_client.post(
        reverse("pages:block_update", args=[page.pk, block_id]),
        {"text": "x", "size": "huge", "align": "center", "revision": 0},
        **HX,
    )
    assert response.headers["HX-Retarget"] == "#settings-pane"
    assert "Select a valid choice" in response.content.decode()
    assert Page.objects.get(pk=page.pk).draft_revision == 0


def test_structural_edits_via_htmx_and_plain_post(owner_client, page):
    url = reverse("pages:edit", args=[page.pk])
    a, b, c = _ids(page)
    r = owner_client.post(
        url, {"action": "block_up", "block_id": b, "revision": 0}, **HX
    )
    assert r.status_code == 200
    assert 'hx-swap-oob="true"' in r.content.decode()
    assert _ids(page) == [b, a, c]
    r = owner_client.post(
        url, {"action": "add_block", "type": "divider", "block_id": a}
    )
    assert r.status_code == 302
    ids = _ids(page)
    assert ids[:2] == [b, a] and ids[3] == c and len(ids) == 4
    owner_client.post(url, {"action": "delete_block", "block_id": a}, **HX)
    assert a not in _ids(page)
    section = Page.objects.get(pk=page.pk).document["sections"][0]["id"]
    owner_client.post(url, {"action": "duplicate_section", "section_id": section}, **HX)
    assert len(Page.objects.get(pk=page.pk).document["sections"]) == 2
    owner_client.post(
        url, {"action": "add_row", "section_id": section, "columns": "3"}, **HX
    )
    rows = Page.objects.get(pk=page.pk).document["sections"][0]["rows"]
    assert [len(r["columns"]) for r in rows] == [1, 3]


def test_conflict_shows_clear_message(owner_client, page):
    url = reverse("pages:edit", args=[page.pk])
    a = _ids(page)[0]
    owner_client.post(
        url, {"action": "delete_block", "block_id": a, "revision": 0}, **HX
    )
    r = owner_client.post(
        url, {"action": "delete_block", "block_id": _ids(page)[0], "revision": 0}, **HX
    )
    assert r.headers["HX-Retarget"] == "#editor-alert"
    assert (
        "This page changed in another tab — reload to see the latest."
        in r.content.decode()
    )
    assert len(_ids(page)) == 2


def test_undo_redo_views(owner_client, page):
    url = reverse("pages:edit", args=[page.pk])
    owner_client.post(url, {"action": "delete_block", "block_id": _ids(page)[0]}, **HX)
    assert len(_ids(page)) == 2
    owner_client.post(reverse("pages:history", args=[page.pk, "undo"]), **HX)
    assert len(_ids(page)) == 3
    owner_client.post(reverse("pages:history", args=[page.pk, "redo"]), **HX)
    assert len(_ids(page)) == 2
    r = owner_client.post(reverse("pages:history", args=[page.pk, "redo"]), **HX)
    assert "Nothing to redo." in r.content.decode()


def test_image_upload_view(owner_client, page, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    image_block = _ids(page)[2]
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), "red").save(buf, "PNG")
    url = reverse("pages:image_upload", args=[page.pk])
    r = owner_client.post(
        url,
        {"block_id": image_block, "image": SimpleUploadedFile("a.png", buf.getvalue())},
        **HX,
    )
    assert r.status_code == 200
    asset = ImageAsset.objects.get()
    assert (
        documents.find_block(Page.objects.get(pk=page.pk).document, image_block)[
            "settings"
        ]["image_id"]
        == asset.pk
    )
    assert 'srcset="' in r.content.decode()
    bad = owner_client.post(
        url,
        {"block_id": image_block, "image": SimpleUploadedFile("b.png", b"nope")},
        **HX,
    )
    assert bad.status_code == 422
    assert "That file is not a valid image." in bad.content.decode()
    assert ImageAsset.objects.count() == 1


def test_page_settings_theme_versions_publish(owner_client, page):
    r = owner_client.post(
        reverse("pages:settings", args=[page.pk]),
        {
            "name": "A",
            "title": "<b>Hi</b>",
            "meta_description": "",
            "social_image": "",
            "favicon": "",
            "head_code": "",
            "footer_code": "",
        },
    )
    assert r.status_code == 302
    assert Page.objects.get(pk=page.pk).title == "Hi"
    r = owner_client.post(
        reverse("pages:theme", args=[page.pk]),
        {
            "primary_color": "#112233",
            "accent_color": "#445566",
            "text_color": "#000000",
            "background_color": "#ffffff",
            "font_family": "serif",
            "button_style": "pill",
            "button_radius": 8,
        },
    )
    assert r.status_code == 302
    assert page.step.funnel.theme.primary_color == "#112233"
    bad = owner_client.post(
        reverse("pages:theme", args=[page.pk]),
        {
            "primary_color": "red;}",
            "accent_color": "#445566",
            "text_color": "#000000",
            "background_color": "#ffffff",
            "font_family": "serif",
            "button_style": "pill",
            "button_radius": 8,
        },
    )
    assert "Use a colour like #4f46e5." in bad.content.decode()
    owner_client.post(reverse("pages:publish", args=[page.pk]))
    version = Page.objects.get(pk=page.pk).published_version
    assert version.number == 1
    assert (
        "v1"
        in owner_client.get(reverse("pages:versions", args=[page.pk])).content.decode()
    )


def test_step_edit_creates_page_once(owner_client, workspace):
    step = StepFactory(funnel__workspace=workspace)
    r = owner_client.get(reverse("pages:step_edit", args=[step.pk]))
    page = Page.objects.get(step=step)
    assert r.url == reverse("pages:editor", args=[page.pk])
    owner_client.get(reverse("pages:step_edit", args=[step.pk]))
    assert Page.objects.filter(step=step).count() == 1


def test_template_gallery_and_create(owner_client, workspace):
    r = owner_client.get(reverse("pages:template_gallery"))
    assert r.status_code == 200
    for name in ("Lead magnet", "Tripwire", "Product launch", "Webinar"):
        assert name in r.content.decode()
    assert (
        owner_client.get(
            reverse("pages:template_preview_step", args=["webinar", 2])
        ).status_code
        == 200
    )
    assert (
        owner_client.get(
            reverse("pages:template_preview_step", args=["webinar", 9])
        ).status_code
        == 404
    )
    r = owner_client.post(
        reverse("pages:template_gallery"), {"template": "lead-magnet", "name": "Guide"}
    )
    assert r.status_code == 302
    assert workspace.funnels.get().name == "Guide"
    bad = owner_client.post(
        reverse("pages:template_gallery"), {"template": "nope", "name": "X"}
    )
    assert "Unknown funnel template." in bad.content.decode()


URLS = [
    ("get", "pages:editor", lambda p: [p.pk]),
    ("post", "pages:edit", lambda p: [p.pk]),
    ("post", "pages:block_update", lambda p: [p.pk, "x"]),
    ("post", "pages:history", lambda p: [p.pk, "undo"]),
    ("post", "pages:image_upload", lambda p: [p.pk]),
    ("get", "pages:settings", lambda p: [p.pk]),
    ("get", "pages:theme", lambda p: [p.pk]),
    ("get", "pages:versions", lambda p: [p.pk]),
    ("post", "pages:publish", lambda p: [p.pk]),
    ("get", "pages:step_edit", lambda p: [p.step_id]),
]


@pytest.mark.parametrize(("method", "name", "args"), URLS)
def test_stranger_gets_404(client, stranger, page, method, name, args):
    """A member of another workspace cannot see or edit this workspace's pages."""
    client.force_login(stranger)
    response = getattr(client, method)(reverse(name, args=args(page)))
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "name", "args"), [u for u in URLS if u[0] == "post"]
)
def test_viewer_gets_403_on_writes(client, viewer, page, method, name, args):
    """A viewer can look at the editor but every write is forbidden."""
    client.force_login(viewer)
    assert client.get(reverse("pages:editor", args=[page.pk])).status_code == 200
    response = client.post(reverse(name, args=args(page)), {"action": "delete_block"})
    assert response.status_code == 403
    assert Page.objects.get(pk=page.pk).draft_revision == 0


def test_viewer_gets_403_creating_from_template(client, viewer):
    client.force_login(viewer)
    r = client.post(
        reverse("pages:template_gallery"), {"template": "webinar", "name": "X"}
    )
    assert r.status_code == 403


def test_unpublish_view(owner_client, public_client, page):
    """Unpublishing from the editor takes the public pages offline."""
    owner_client.post(reverse("pages:publish", args=[page.pk]))
    funnel = page.step.funnel
    visitor = public_client(funnel.workspace)
    assert visitor.get(f"/{funnel.slug}/").status_code == 200
    owner_client.post(reverse("pages:publish", args=[page.pk]), {"action": "unpublish"})
    assert visitor.get(f"/{funnel.slug}/").status_code == 404


def test_drag_and_drop_move_rerenders_only_columns(owner_client, workspace):
    """A drop posts move_block; the response swaps just the two columns involved."""
    page = page_with_blocks("headline", "text", workspace=workspace)
    doc, _ = documents.add_section(Page.objects.get(pk=page.pk).document, columns=2)
    page.document = doc
    page.save()
    target = doc["sections"][1]["rows"][0]["columns"][1]["id"]
    source = doc["sections"][0]["rows"][0]["columns"][0]["id"]
    headline = _ids(page)[0]
    r = owner_client.post(
        reverse("pages:edit", args=[page.pk]),
        {"action": "move_block", "block_id": headline, "column_id": target, "index": 0},
        **HX,
    )
    html = r.content.decode()
    assert r.headers["HX-Reswap"] == "none"
    assert f'<div id="col-{source}" hx-swap-oob="innerHTML">' in html
    assert f'<div id="col-{target}" hx-swap-oob="innerHTML">' in html
    assert html.count('class="pb-block-bar"') == 2
    col = documents._column(Page.objects.get(pk=page.pk).document, target)
    assert [b["id"] for b in col["blocks"]] == [headline]


def test_settings_edit_query_count_does_not_grow_with_blocks(
    owner_client, workspace, django_assert_max_num_queries
):
    """A block edit costs the same few queries on a 5- or a 60-block page."""
    owner_client.get(reverse("pages:template_gallery"))  # session picks the workspace
    for count in (5, 60):
        page = page_with_blocks(*["headline"] * count, workspace=workspace)
        block_id = _ids(page)[0]
        with django_assert_max_num_queries(11):
            r = owner_client.post(
                reverse("pages:block_update", args=[page.pk, block_id]),
                {"text": "Hi", "size": "xl", "align": "center", "revision": 0},
                **HX,
            )
        assert r.status_code == 200


EDITS = {
    # view: (valid POST data, what a plain post is redirected to select)
    "pages:block_update": (
        {"text": "Hi", "size": "xl", "align": "center"},
        "block",
    ),
    "pages:block_style": ({"padding": "2", "align": "left"}, "block"),
    "pages:section_style": ({"background": "dark", "width": "lg"}, "section"),
}


@pytest.mark.parametrize("view", list(EDITS))
def test_block_and_section_edits_answer_alike(owner_client, page, view):
    """Settings, style and section edits end the same way: a plain post goes back
    to the editor with the block or section selected; htmx gets the changed
    block or section; an edit against a stale revision is refused with the
    editor's alert (htmx) or a message (plain) and changes nothing."""
    block_id = _ids(page)[0]
    section_id = Page.objects.get(pk=page.pk).document["sections"][0]["id"]
    data, selects = EDITS[view]
    target = block_id if selects == "block" else section_id
    url = reverse(view, args=[page.pk, target])
    editor = reverse("pages:editor", args=[page.pk])

    plain = owner_client.post(url, {**data, "revision": 0})
    assert plain.status_code == 302
    assert plain.url == f"{editor}?{selects}={target}"
    swapped = owner_client.post(url, {**data, "revision": 1}, **HX)
    assert swapped.status_code == 200
    assert f'id="{selects}-{target}"' in swapped.content.decode()
    assert Page.objects.get(pk=page.pk).draft_revision == 2

    stale = owner_client.post(url, {**data, "revision": 0}, **HX)
    assert stale.status_code == 200
    assert stale.headers["HX-Retarget"] == "#editor-alert"
    assert "another" in stale.content.decode().lower()
    stale_plain = owner_client.post(url, {**data, "revision": 0})
    assert stale_plain.status_code == 302 and stale_plain.url == editor
    assert Page.objects.get(pk=page.pk).draft_revision == 2
