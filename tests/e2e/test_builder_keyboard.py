"""The canvas from the keyboard alone, and the blocks that used to trap the mouse."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from pages import documents
from pages.models import Page
from tests.e2e.conftest import htmx_idle, log_in
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db(transaction=True)


def _order(pk: int) -> list[str]:
    doc = Page.objects.get(pk=pk).document
    return [b["type"] for b in documents.iter_blocks(doc)]


def _focused(page) -> dict:
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return {role: e.getAttribute('role'),"
        " name: e.getAttribute('aria-label') || e.textContent.trim(),"
        " id: e.dataset.id || '', tag: e.tagName}; }"
    )


def test_canvas_works_from_the_keyboard(
    live_server, page, owner, workspace, screenshot
):
    """Tab reaches the first block; arrows move between blocks; the toolbar is a Tab
    away; Alt+↓ moves the block; Enter edits it in place; Delete removes it and
    Ctrl+Z brings it back."""
    pg = page_with_blocks("headline", "text", "button", workspace=workspace)
    log_in(page, live_server, owner.email)
    page.goto(f"{live_server.url}/pages/{pg.pk}/edit/")
    htmx_idle(page)

    presses = 0
    while _focused(page)["role"] != "group" and presses < 60:
        page.keyboard.press("Tab")
        presses += 1
    focused = _focused(page)
    assert focused["name"] == "Headline: Your big, bold promise goes here"
    assert presses < 40, presses

    page.keyboard.press("ArrowDown")
    assert _focused(page)["name"].startswith("Text: Write a short paragraph")
    page.keyboard.press("ArrowUp")
    assert _focused(page)["name"].startswith("Headline:")

    # The toolbar shows on focus and is the next Tab stop.
    toolbar = page.get_by_role("toolbar", name="Block actions").first
    assert toolbar.is_visible()
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    assert _focused(page)["name"] == "Move up"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert _focused(page)["role"] == "group"

    # Alt+↓ moves the headline below the text; the focus stays on it.
    page.keyboard.press("Alt+ArrowDown")
    page.wait_for_function("() => document.activeElement.dataset.type === 'headline'")
    htmx_idle(page)
    assert _order(pg.pk) == ["text", "headline", "button"]
    assert page.get_by_role("status").first.inner_text() == "Moved headline down"

    # Enter edits the headline in place; Esc saves and returns to the block.
    page.keyboard.press("Enter")
    editor = page.get_by_role("textbox", name="Headline text")
    editor.wait_for()
    # The editor takes the focus on the next frame (Tiptap's autofocus).
    expect(editor).to_be_focused()
    page.keyboard.press("End")
    page.keyboard.type(" today")
    page.keyboard.press("Escape")
    page.wait_for_function(
        "() => document.activeElement.dataset && document.activeElement.dataset.type"
        " === 'headline'"
    )
    htmx_idle(page)
    assert _focused(page)["name"] == "Headline: Your big, bold promise goes here today"
    headline = next(
        b
        for b in documents.iter_blocks(Page.objects.get(pk=pg.pk).document)
        if b["type"] == "headline"
    )
    assert headline["settings"]["text"] == "Your big, bold promise goes here today"

    # Delete removes it, says how to get it back, and Ctrl+Z does.
    page.keyboard.press("Delete")
    page.get_by_text("Deleted Headline. Press Ctrl+Z to undo.").wait_for()
    htmx_idle(page)
    assert _order(pg.pk) == ["text", "button"]
    assert _focused(page)["name"].startswith("Button:")
    screenshot(page, "builder-keyboard-deleted")
    page.keyboard.press("Control+z")
    page.locator(".pb-block[data-type=headline]").wait_for()
    htmx_idle(page)
    assert _order(pg.pk) == ["text", "headline", "button"]


def test_enter_opens_settings_of_a_block_without_text(
    live_server, page, owner, workspace
):
    """A block with nothing to type in (a divider) opens its settings on Enter,
    with the focus on its first field; Esc comes back to the block."""
    pg = page_with_blocks("divider", workspace=workspace)
    log_in(page, live_server, owner.email)
    page.goto(f"{live_server.url}/pages/{pg.pk}/edit/")
    htmx_idle(page)
    page.locator(".pb-block").first.focus()
    page.keyboard.press("Enter")
    page.locator("#settings-pane", has_text="Divider").wait_for()
    page.wait_for_function("() => document.activeElement.closest('#settings-pane')")
    assert page.evaluate("document.activeElement.name") == "style"
    page.keyboard.press("Escape")
    assert _focused(page)["name"] == "Divider"


def test_custom_html_block_selects_on_click(live_server, page, owner, workspace):
    pg = page_with_blocks("text", "custom_html", workspace=workspace)
    log_in(page, live_server, owner.email)
    page.goto(f"{live_server.url}/pages/{pg.pk}/edit/")
    htmx_idle(page)
    # A click where the frame is (the frame itself no longer takes it).
    box = page.locator(".pb-block[data-type=custom_html] iframe").bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.locator("#settings-pane", has_text="Custom HTML").wait_for()
    expect(page.locator(".pb-block[data-type=custom_html]")).to_have_class(
        re.compile(r"\bis-selected\b")
    )


def test_video_loads_nothing_from_outside_before_the_click(
    live_server, public_url, page, owner, workspace
):
    from pages import services

    pg = page_with_blocks("video", workspace=workspace)
    block_id = next(documents.iter_blocks(pg.document))["id"]
    services.page_edit(
        page=pg,
        revision=0,
        operation=lambda d: documents.update_block(
            d, block_id, {"url": "https://youtu.be/abcdefghijk", "caption": "Watch"}
        ),
    )
    services.funnel_publish(funnel=pg.step.funnel, user=owner)
    outside = []
    own = public_url(workspace, "/")
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if route.request.url.startswith(own)
            or route.request.url.startswith("data:")
            else (outside.append(route.request.url), route.abort())
        ),
    )
    funnel = pg.step.funnel
    page.goto(public_url(workspace, f"/{funnel.slug}/{pg.step.slug}/"))
    button = page.get_by_role("button", name="Watch")
    button.wait_for()
    page.wait_for_load_state("networkidle")
    assert outside == []
    button.click()
    page.locator("iframe.of-video-frame").wait_for()
    page.wait_for_timeout(300)
    assert outside and outside[0].startswith(
        "https://www.youtube-nocookie.com/embed/abcdefghijk"
    )
