from __future__ import annotations

import io

import pytest
from PIL import Image

from funnels.models import Funnel
from pages.models import Page
from tests.e2e.conftest import htmx_idle
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _png_bytes() -> bytes:
    image = Image.new("RGB", (1200, 700), "#4f46e5")
    for x in range(0, 1200, 60):
        for y in range(0, 700, 60):
            image.putpixel((x, y), (255, 255, 255))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def test_build_tripwire_funnel_and_publish(
    live_server, public_url, page, screenshot, owner
):
    """A marketer creates a Tripwire funnel, edits and publishes a page, and the
    public URL shows exactly the published page."""
    page.goto(live_server.url + "/login/")
    page.get_by_label("E-mail").fill(owner.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")

    page.goto(live_server.url + "/funnel-templates/")
    screenshot(page, "pages-template-gallery")
    card = page.locator("#tpl-tripwire")
    card.get_by_label("Funnel name").fill("Meal prep tripwire")
    card.get_by_role("button", name="Use template").click()
    page.locator("#canvas").wait_for()
    funnel = Funnel.objects.get(name="Meal prep tripwire")
    assert [s.kind for s in funnel.steps.all()] == [
        "optin",
        "order",
        "upsell",
        "downsell",
        "thankyou",
    ]
    screenshot(page, "pages-editor-template")

    # Edit the headline.
    headline = page.locator(".pb-block[data-type=headline] .pb-block-body").first
    headline.click()
    page.locator("#settings-pane", has_text="Headline").wait_for()
    htmx_idle(page)
    field = page.locator("#settings-pane").get_by_label("Text")
    field.fill("Eat well all week with one hour of Sunday prep")
    page.locator(
        ".pb-block[data-type=headline] h1", has_text="one hour of Sunday prep"
    ).wait_for()
    page.get_by_text("All changes saved").wait_for()

    # Upload an image into the image block.
    htmx_idle(page)
    page.locator(".pb-block[data-type=image] .pb-block-body").first.click()
    page.locator("#settings-pane", has_text="Image").wait_for()
    htmx_idle(page)
    page.locator("#upload-input").set_input_files(
        files=[{"name": "cover.png", "mimeType": "image/png", "buffer": _png_bytes()}]
    )
    page.locator(".pb-block[data-type=image] img").first.wait_for()

    # Add an opt-in form below the selected image.
    htmx_idle(page)
    page.locator(".pb-palette-item[data-type=optin_form]").click()
    page.locator("#settings-pane", has_text="Opt-in form").wait_for()
    forms_count = page.locator(".pb-block[data-type=optin_form]").count()
    assert forms_count == 2

    # Reorder: move the new opt-in form up above the image with the keyboard button.
    page.wait_for_function(
        "() => document.querySelectorAll('.pb-block.is-selected').length === 1"
        " && document.querySelector('.pb-block.is-selected').dataset.type"
        " === 'optin_form'"
    )
    new_id = page.locator(".pb-block.is-selected").get_attribute("data-id")
    col = page.locator(f"#block-{new_id}").locator("xpath=..")
    before = col.locator(":scope > .pb-block").evaluate_all(
        "els => els.map(e => e.dataset.id)"
    )
    page.locator(f"#block-{new_id}").hover()
    htmx_idle(page)
    page.locator(f"#block-{new_id}").get_by_role("button", name="Move up").click()
    page.wait_for_function(
        "([id, n]) => { const el = document.getElementById('block-' + id);"
        " return el && [...el.parentNode.children].filter(c => c.classList.contains('pb-block'))"  # noqa: E501
        ".map(c => c.dataset.id).indexOf(id) === n; }",
        arg=[new_id, before.index(new_id) - 1],
    )

    # Undo the move.
    htmx_idle(page)
    page.get_by_role("button", name="Undo").click()
    page.wait_for_function(
        "([id, n]) => { const el = document.getElementById('block-' + id);"
        " return el && [...el.parentNode.children].filter(c => c.classList.contains('pb-block'))"  # noqa: E501
        ".map(c => c.dataset.id).indexOf(id) === n; }",
        arg=[new_id, before.index(new_id)],
    )
    screenshot(page, "pages-editor-desktop")

    htmx_idle(page)
    page.get_by_role("button", name="Mobile").click()
    assert page.locator("#pb-frame").get_attribute("data-device") == "mobile"
    screenshot(page, "pages-editor-mobile")

    htmx_idle(page)
    page.locator("#publish-btn").click()
    page.get_by_role("dialog").get_by_role("button", name="Publish funnel").click()
    page.get_by_text("Published!").wait_for()
    draft = Page.objects.get(step__funnel=funnel, step__slug="optin")
    assert draft.published_version.number == 1

    public = page.context.new_page()
    public.goto(public_url(funnel.workspace, f"/{funnel.slug}/"))
    public.get_by_role(
        "heading", name="Eat well all week with one hour of Sunday prep"
    ).wait_for()
    assert public.locator("img[srcset]").count() == 1
    assert public.locator("form.of-form input[name=email]").count() == 2
    screenshot(public, "pages-public-optin")
    public.goto(public_url(funnel.workspace, f"/{funnel.slug}/special-offer/"))
    public.get_by_role("button", name="Complete my order →").wait_for()
    screenshot(public, "pages-public-order")
    public.goto(f"{live_server.url}/funnel-templates/webinar/0/")
    screenshot(public, "pages-template-preview-webinar")
