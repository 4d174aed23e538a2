"""Text typed on the canvas: cleaned like the settings form, one undo step per
typing session, only the fields that are edited in place."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pages import documents
from pages.models import Page, PageRevision
from pages.sanitize import clean_inline, clean_rich
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _block(page, n=0):
    return list(documents.iter_blocks(Page.objects.get(pk=page.pk).document))[n]


def _post(client, page, block_id, **data):
    return client.post(
        reverse("pages:block_inplace", args=[page.pk, block_id]), data, **HX
    )


def test_headline_typed_in_place_is_cleaned_and_rendered(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    block_id = _block(page)["id"]
    response = _post(
        owner_client,
        page,
        block_id,
        field="text",
        value='<p>Eat <strong>well</strong> <span style="color: #E11D48">'
        "all week</span><script>alert(1)</script></p>",
        revision=0,
        session="s1",
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert (
        'Eat <strong>well</strong> <span style="color:#e11d48">all week</span></h1>'
        in html
    )
    assert _block(page)["settings"]["text"] == (
        'Eat <strong>well</strong> <span style="color:#e11d48">all week</span>'
    )
    assert 'id="rev" name="revision" value="1" hx-swap-oob="true"' in html


def test_one_typing_session_is_one_undo_step(owner_client, workspace):
    page = page_with_blocks("text", workspace=workspace)
    block_id = _block(page)["id"]
    for rev, value in enumerate(["<p>H</p>", "<p>He</p>", "<p>Hello</p>"]):
        _post(
            owner_client,
            page,
            block_id,
            field="html",
            value=value,
            revision=rev,
            session="abc",
        )
    assert _block(page)["settings"]["html"] == "<p>Hello</p>"
    assert list(
        PageRevision.objects.filter(page=page).values_list("number", "label")
    ) == [(0, "Created"), (1, "Typed in text")]
    # A new session is a new undo step.
    _post(
        owner_client,
        page,
        block_id,
        field="html",
        value="<p>Bye</p>",
        revision=3,
        session="def",
    )
    owner_client.post(
        reverse("pages:history", args=[page.pk, "undo"]), {"revision": 4}, **HX
    )
    assert _block(page)["settings"]["html"] == "<p>Hello</p>"
    owner_client.post(
        reverse("pages:history", args=[page.pk, "undo"]), {"revision": 5}, **HX
    )
    assert "html" not in _block(page)["settings"]  # back to the default


def test_list_items_and_button_label_in_place(owner_client, workspace):
    page = page_with_blocks("bullets", "button", workspace=workspace)
    bullets, button = _block(page, 0)["id"], _block(page, 1)["id"]
    _post(
        owner_client,
        page,
        bullets,
        field="items",
        value="Fast <b>prep</b>\n\n  Cheap  \nKid-approved",
        revision=0,
    )
    assert _block(page, 0)["settings"]["items"] == [
        "Fast prep",
        "Cheap",
        "Kid-approved",
    ]
    _post(
        owner_client,
        page,
        button,
        field="text",
        value="Get   it <i>now</i>",
        revision=1,
    )
    assert _block(page, 1)["settings"]["text"] == "Get it now"
    _post(owner_client, page, button, field="align", value="left", revision=2)
    assert _block(page, 1)["settings"]["align"] == "left"


@pytest.mark.parametrize(
    ("block_type", "data", "message"),
    [
        (
            "headline",
            {"field": "size", "value": "xl"},
            "cannot be edited on the canvas",
        ),
        ("divider", {"field": "style", "value": "x"}, "cannot be edited on the canvas"),
        ("headline", {"field": "align", "value": "justify"}, "cannot be aligned"),
        ("divider", {"field": "align", "value": "left"}, "cannot be aligned"),
        ("text", {"field": "html", "value": "x" * 50_001}, "too long"),
    ],
)
def test_bad_in_place_edits_are_refused(
    owner_client, workspace, block_type, data, message
):
    page = page_with_blocks(block_type, workspace=workspace)
    response = _post(owner_client, page, _block(page)["id"], revision=0, **data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert Page.objects.get(pk=page.pk).draft_revision == 0


def test_stranger_404_and_viewer_403(client, stranger, viewer, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    block_id = _block(page)["id"]
    client.force_login(stranger)
    assert _post(client, page, block_id, field="text", value="x").status_code == 404
    client.force_login(viewer)
    assert _post(client, page, block_id, field="text", value="x").status_code == 403
    assert Page.objects.get(pk=page.pk).draft_revision == 0


def test_conflict_from_another_tab_changes_nothing(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    response = _post(
        owner_client, page, _block(page)["id"], field="text", value="x", revision=7
    )
    assert "This page changed in another tab" in response.content.decode()
    assert _block(page)["settings"] == {}
    assert Page.objects.get(pk=page.pk).draft_revision == 0


def test_sanitiser_keeps_only_colour_and_alignment_styles():
    assert clean_rich(
        '<p style="text-align: center; position: fixed">a</p>'
        '<p style="text-align: evil">b</p>'
        '<span style="color: red; background: url(x)">c</span>'
        '<span style="color: #AbCdEf">d</span>'
    ) == (
        '<p style="text-align:center">a</p><p>b</p><span>c</span>'
        '<span style="color:#abcdef">d</span>'
    )
    assert clean_inline("<p>One</p><p>two <a href='javascript:x'>l</a></p>") == (
        'One<br>two <a rel="noopener noreferrer">l</a>'
    )
    assert clean_inline("Fish & chips < 5") == "Fish &amp; chips &lt; 5"


def test_editor_canvas_marks_in_place_fields(owner_client, workspace):
    page = page_with_blocks(
        "headline", "text", "button", "bullets", workspace=workspace
    )
    html = owner_client.get(reverse("pages:editor", args=[page.pk])).content.decode()
    assert 'data-inplace="text" data-mode="inline"' in html
    assert 'data-inplace="html" data-mode="rich"' in html
    assert 'data-inplace="text" data-mode="plain"' in html
    assert 'data-inplace="items" data-mode="lines"' in html
    assert "vendor/tiptap.min.js" in html and "js/inline.js" in html
