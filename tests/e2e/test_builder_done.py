"""The issue's "done when": edit a headline in place, style a block, hide it on
mobile, check the mobile preview, publish with the speed budget shown, and see
the result on the public page (desktop and phone)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from pages import documents
from pages.models import Page
from tests.e2e.conftest import htmx_idle, log_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_edit_in_place_style_hide_on_mobile_publish(
    live_server, public_url, page, new_page, owner, workspace, screenshot
):
    log_in(page, live_server, owner.email)
    page.goto(live_server.url + "/funnel-templates/")
    card = page.locator("#tpl-lead-magnet")
    card.get_by_label("Funnel name").fill("Client magnet")
    card.get_by_role("button", name="Use template").click()
    page.locator("#canvas").wait_for()
    htmx_idle(page)
    pg = Page.objects.get(step__funnel__name="Client magnet", step__position=0)

    # 1. Edit the headline in place: click it, select all, type, make a word bold.
    headline = page.locator(".pb-block[data-type=headline] h1").first
    headline.click()
    editor = page.get_by_role("textbox", name="Headline text")
    editor.wait_for()
    expect(editor).to_be_focused()  # Tiptap focuses on the next frame
    page.keyboard.press("Control+a")
    page.keyboard.type("Land your first 10 clients ")
    page.get_by_role("button", name="Bold").click()
    page.keyboard.type("this month")
    page.get_by_role("toolbar", name="Text formatting").wait_for()
    screenshot(page, "builder-done-inplace")
    page.keyboard.press("Escape")
    page.locator(
        ".pb-block[data-type=headline] h1 strong", has_text="this month"
    ).wait_for()
    htmx_idle(page)
    block = next(
        b
        for b in documents.iter_blocks(Page.objects.get(pk=pg.pk).document)
        if b["type"] == "headline"
    )
    assert block["settings"]["text"] == (
        "Land your first 10 clients <strong>this month</strong>"
    )

    # 2. Style the sub-headline above it and hide it on mobile.
    sub = page.locator(".pb-block[data-type=subheadline]").first
    sub_id = sub.get_attribute("data-id")
    sub.locator(".pb-block-body").click()
    style = page.locator("#style-form")
    style.wait_for()
    htmx_idle(page)
    style.get_by_role("group", name="Background").get_by_text("Night").click()
    htmx_idle(page)
    style.get_by_role("group", name="Text colour").get_by_text("White").click()
    htmx_idle(page)
    style.get_by_role("group", name="Padding").get_by_text("M", exact=True).click()
    htmx_idle(page)
    style.get_by_role("group", name="Corners").get_by_text("L", exact=True).click()
    htmx_idle(page)
    style.get_by_label("Hide on mobile").check()
    htmx_idle(page)
    page.locator(f"#block-{sub_id} .of-hide-m.of-p-2.of-r-3").wait_for()
    saved = documents.find_block(Page.objects.get(pk=pg.pk).document, sub_id)
    assert saved["style"] == {
        "font": "body",  # from the template
        "color": "white",
        "background": "dark",
        "padding": "2",
        "radius": "3",
        "hide_mobile": True,
    }
    screenshot(page, "builder-done-styled")

    # 3. The mobile preview marks it as hidden on mobile.
    page.get_by_role("button", name="Mobile").click()
    hidden = page.locator(f"#block-{sub_id} .of-hide-m")
    assert hidden.evaluate("e => getComputedStyle(e, '::before').content") == (
        '"Hidden on mobile"'
    )
    screenshot(page, "builder-done-mobile-preview")
    page.get_by_role("button", name="Desktop").click()

    # 4. Publish: the dialog shows the speed score of every page first.
    page.get_by_role("link", name="Publish funnel…").click()
    dialog = page.get_by_role("dialog", name="Publish “Client magnet”")
    dialog.wait_for()
    dialog.locator(".pc-page").first.wait_for()
    assert dialog.locator(".pc-page").count() == 2
    assert (
        dialog.get_by_role("img", name="Speed score 100 out of 100, good").count() == 2
    )
    screenshot(page, "builder-done-publish-dialog")
    dialog.get_by_role("button", name="Publish funnel").click()
    page.get_by_text("Published!").wait_for()

    # 5. The public page: the new headline; the styled line on desktop only.
    url = public_url(workspace, f"/{pg.step.funnel.slug}/{pg.step.slug}/")
    desktop = new_page()
    desktop.goto(url)
    desktop.get_by_role(
        "heading", name="Land your first 10 clients this month"
    ).wait_for()
    styled = desktop.locator(".of-s.of-hide-m")
    assert styled.is_visible()
    assert styled.evaluate("e => getComputedStyle(e).backgroundColor") == (
        "rgb(15, 23, 42)"
    )
    screenshot(desktop, "builder-done-public-desktop")
    phone = new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
    phone.goto(url)
    phone.get_by_role(
        "heading", name="Land your first 10 clients this month"
    ).wait_for()
    assert not phone.locator(".of-s.of-hide-m").is_visible()
    screenshot(phone, "builder-done-public-phone")
