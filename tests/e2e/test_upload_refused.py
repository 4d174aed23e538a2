"""A refused image upload says why in the editor (the answer is a 4xx)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.e2e.conftest import htmx_idle, log_in
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db(transaction=True)


def _big_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (10000, 8000), (30, 90, 200)).save(buf, "PNG")
    return buf.getvalue()


def test_a_too_large_image_is_refused_with_the_reason(
    live_server, page, screenshot, owner, workspace
):
    editor_page = page_with_blocks("headline", "image", workspace=workspace)
    log_in(page, live_server, owner.email)
    answers: list[int] = []
    page.on(
        "response",
        lambda r: answers.append(r.status) if "/images/" in r.url else None,
    )
    page.goto(f"{live_server.url}/pages/{editor_page.pk}/edit/")
    page.locator(".pb-block[data-type=image] .pb-block-body").first.click()
    page.locator("#settings-pane", has_text="Image").wait_for()
    htmx_idle(page)
    page.locator("#upload-input").set_input_files(
        files=[{"name": "huge.png", "mimeType": "image/png", "buffer": _big_png()}]
    )
    alert = page.get_by_role("alert").filter(has_text="10000×8000 px")
    alert.wait_for()
    assert "at most 12000 px on a side and 50 megapixels" in alert.inner_text()
    assert answers == [422]
    assert page.get_by_text("All changes saved").count() == 0
    screenshot(page, "upload-refused")
