from __future__ import annotations

import pytest

from pages import documents, services
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db(transaction=True)

SPY = """<p id="probe">probe</p><script>
var out = {};
try { out.cookie = document.cookie; } catch (e) { out.cookie = "blocked:" + e.name; }
try { out.parent = String(window.parent.document.cookie); }
catch (e) { out.parent = "blocked:" + e.name; }
window.parent.postMessage(JSON.stringify(out), "*");
</script>"""


def test_custom_html_script_cannot_read_app_cookies(
    live_server, public_url, page, owner, workspace
):
    """A script in a custom HTML block never runs on the app's origin, and on the
    published page it runs sandboxed: it cannot read cookies from its own document
    or from the page around it."""
    pg = page_with_blocks("custom_html", workspace=workspace)
    block_id = next(documents.iter_blocks(pg.document))["id"]
    services.page_edit(
        page=pg,
        revision=pg.draft_revision,
        operation=lambda d: documents.update_block(
            d, block_id, {"html": SPY, "height": 80}
        ),
    )
    funnel = pg.step.funnel
    services.funnel_publish(funnel=funnel, user=owner)
    live = public_url(workspace, f"/{funnel.slug}/")
    page.context.add_cookies(
        [
            {"name": "appsecret", "value": "s3cret", "url": live_server.url},
            {"name": "pagesecret", "value": "p4ge", "url": live},
        ]
    )
    page.goto(live_server.url + "/login/")
    page.get_by_label("E-mail").fill(owner.email)
    page.get_by_label("Password").fill("correct-horse-battery-staple")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/")

    page.add_init_script(
        "window.__spy = []; window.addEventListener('message', e => window.__spy.push(e.data));"  # noqa: E501
    )
    # The editor previews the HTML, but its script does not run at all: the admin's
    # policy allows no inline script, and a srcdoc frame inherits its parent's.
    page.goto(f"{live_server.url}/pages/{pg.pk}/edit/")
    frame = page.frame_locator("iframe.of-custom-html")
    assert frame.locator("#probe").inner_text() == "probe"
    page.wait_for_timeout(1000)
    assert page.evaluate("window.__spy") == []
    assert "s3cret" in page.evaluate("document.cookie")  # the app itself can read it

    # The published page, on the workspace's host, runs it in the sandbox.
    page.goto(live)
    page.wait_for_function("() => window.__spy.length > 0")
    data = page.evaluate("JSON.parse(window.__spy[0])")
    assert data["cookie"].startswith("blocked:")
    assert data["parent"].startswith("blocked:")
    cookies = page.evaluate("document.cookie")
    assert "p4ge" in cookies  # the page itself can read its own
    assert "s3cret" not in cookies  # the app's cookies are not even sent here
    frame = page.frame_locator("iframe.of-custom-html")
    assert frame.locator("#probe").inner_text() == "probe"
