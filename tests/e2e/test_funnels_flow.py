from __future__ import annotations

import pytest

from funnels.models import Funnel, Step
from tests.e2e.conftest import htmx_idle
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def _login(page, live_server, email):
    page.goto(live_server.url + "/login/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()


def _row(page, name):
    return page.locator(".fn-step").filter(
        has=page.locator(".fn-step-name", has_text=name)
    )


def _names(page):
    return page.locator("#step-list .fn-step-name").all_inner_texts()


def test_build_a_funnel_in_the_steps_editor(
    live_server, page, owner, workspace, screenshot
):
    """A marketer builds a branching funnel, reorders, duplicates, archives, deletes."""
    _login(page, live_server, owner.email)
    page.get_by_role("heading", name="No funnels yet").wait_for()
    screenshot(page, "funnels-empty")
    page.get_by_role("link", name="+ New funnel").first.click()
    page.get_by_label("Name").fill("Spring Tripwire")
    assert page.get_by_label("URL").input_value() == "spring-tripwire"
    screenshot(page, "funnels-create")
    page.get_by_role("button", name="Create funnel").click()
    page.get_by_text("No steps yet.").wait_for()

    for kind, name in [
        ("Opt-in", "Get the guide"),
        ("Order form", "Checkout"),
        ("Upsell", "Pro bundle"),
        ("Thank-you", "Thanks"),
        ("Downsell", "Lite bundle"),
    ]:
        page.get_by_label("Add a step").select_option(label=kind)
        page.get_by_label("Step name").fill(name)
        page.get_by_role("button", name="+ Add step").click()
        page.get_by_role("status").get_by_text(f"Added “{name}”.").wait_for()
    assert _names(page) == [
        "Get the guide",
        "Checkout",
        "Pro bundle",
        "Thanks",
        "Lite bundle",
    ]

    # Rename one step through its settings.
    row = _row(page, "Get the guide")
    row.get_by_text("Settings").click()
    row.get_by_label("Name").fill("Free guide")
    row.get_by_role("button", name="Save step").click()
    page.get_by_role("status").get_by_text("Saved “Free guide”.").wait_for()

    # Keyboard: move the downsell up one place with its button, then press Enter.
    page.get_by_role("button", name="Move Lite bundle up").click()
    page.get_by_role("status").get_by_text("Moved “Lite bundle” up.").wait_for()
    assert _names(page) == [
        "Free guide",
        "Checkout",
        "Pro bundle",
        "Lite bundle",
        "Thanks",
    ]
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "Move Lite bundle up"
    htmx_idle(page)
    page.keyboard.press("Enter")
    page.get_by_role("button", name="Move Lite bundle down").wait_for()
    page.wait_for_function(
        "() => document.querySelectorAll('#step-list .fn-step-name')[2].innerText"
        " === 'Lite bundle'"
    )
    page.wait_for_function(
        "() => document.activeElement.getAttribute('aria-label')"
        " === 'Move Lite bundle up'"
    )
    htmx_idle(page)
    page.get_by_role("button", name="Move Lite bundle down").focus()
    htmx_idle(page)
    page.keyboard.press("Enter")
    page.wait_for_function(
        "() => document.querySelectorAll('#step-list .fn-step-name')[3].innerText"
        " === 'Lite bundle'"
    )

    # Drag and drop: drag "Thanks" above "Checkout"... then back below.
    thanks = _row(page, "Thanks").locator(".fn-handle")
    checkout = _row(page, "Checkout")
    a, b = thanks.bounding_box(), checkout.bounding_box()
    page.mouse.move(a["x"] + 4, a["y"] + 6)
    page.mouse.down()
    for i in range(1, 21):
        y = a["y"] + 6 + (b["y"] + 4 - a["y"] - 6) * i / 20
        page.mouse.move(a["x"] + 4, y)
    page.wait_for_timeout(200)
    page.mouse.up()
    page.get_by_role("status").get_by_text("Order saved.").wait_for()
    assert _names(page) == [
        "Free guide",
        "Thanks",
        "Checkout",
        "Pro bundle",
        "Lite bundle",
    ]
    funnel = Funnel.objects.get(name="Spring Tripwire")
    assert list(funnel.steps.order_by("position").values_list("name", flat=True)) == [
        "Free guide",
        "Thanks",
        "Checkout",
        "Pro bundle",
        "Lite bundle",
    ]
    for index in (2, 3, 4):
        page.get_by_role("button", name="Move Thanks down").click()
        page.wait_for_function(
            "() => document.querySelectorAll('#step-list .fn-step-name')"
            f"[{index}].innerText === 'Thanks'"
        )

    # Upsell's decline leads to the downsell.
    upsell = _row(page, "Pro bundle")
    upsell.get_by_text("Settings").click()
    upsell.get_by_label("On decline go to").select_option(
        label="Lite bundle (Downsell)"
    )
    upsell.get_by_role("button", name="Save step").click()
    page.get_by_role("status").get_by_text("Saved “Pro bundle”.").wait_for()
    assert page.locator(".fn-graph path.edge-decline").count() == 1
    assert page.locator(".fn-graph .node.is-branch").count() == 1
    screenshot(page, "funnels-detail-graph")

    # The referenced downsell cannot be deleted.
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Delete Lite bundle").click()
    page.get_by_role("alert").get_by_text("“Pro bundle” leads to it").wait_for()
    assert Step.objects.filter(name="Lite bundle").exists()
    screenshot(page, "funnels-delete-refused")

    # Duplicate, then archive the copy and delete the original with confirmation.
    page.get_by_role("button", name="Duplicate").click()
    page.get_by_text("Duplicated as “Spring Tripwire (copy)”.").wait_for()
    assert _names(page) == [
        "Free guide",
        "Checkout",
        "Pro bundle",
        "Lite bundle",
        "Thanks",
    ]
    page.get_by_role("button", name="Archive").click()
    page.get_by_text("“Spring Tripwire (copy)” archived.").wait_for()
    screenshot(page, "funnels-list")
    page.get_by_role("link", name="Archived").click()
    page.get_by_role("heading", name="Spring Tripwire (copy)").wait_for()
    page.get_by_role("link", name="Active").click()
    # The list shows each funnel's address on the workspace's public host.
    page.get_by_role(
        "link", name=f"Spring Tripwire {workspace.public_host}/spring-tripwire/"
    ).click()
    page.get_by_role("link", name="Delete", exact=True).click()
    page.get_by_label("Type Spring Tripwire to confirm").fill("spring")
    page.get_by_role("button", name="Delete funnel forever").click()
    page.get_by_text("Type the funnel name").wait_for()
    screenshot(page, "funnels-delete-confirm")
    page.get_by_label("Type Spring Tripwire to confirm").fill("Spring Tripwire")
    page.get_by_role("button", name="Delete funnel forever").click()
    page.get_by_text("“Spring Tripwire” deleted.").wait_for()
    assert list(Funnel.objects.values_list("name", flat=True)) == [
        "Spring Tripwire (copy)"
    ]
