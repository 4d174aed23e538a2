"""Image uploads are bounded: pixels, memory, concurrency; refusals are 4xx."""

from __future__ import annotations

import io
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from pages import documents, services
from pages.models import ImageAsset
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db

HX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def page(workspace):
    return page_with_blocks("image", workspace=workspace)


def _block(page) -> str:
    return page.document["sections"][0]["rows"][0]["columns"][0]["blocks"][0]["id"]


def _png(size: tuple[int, int], fmt: str = "PNG") -> SimpleUploadedFile:
    """A flat image: large canvases stay a small file."""
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buf, fmt)
    return SimpleUploadedFile(f"i.{fmt.lower()}", buf.getvalue())


def _upload(client, page, upload, htmx: bool = True):
    return client.post(
        reverse("pages:image_upload", args=[page.pk]),
        {"block_id": _block(page), "image": upload},
        **(HX if htmx else {}),
    )


@pytest.mark.parametrize("htmx", [True, False])
def test_a_10000_by_8000_png_is_refused_with_422_and_the_reason(
    owner_client, page, htmx, tmp_path
):
    """80 megapixels would need 320 MB to decode: refused before decoding, with a
    4xx and the message, as a fragment (htmx) and as the whole editor page."""
    response = _upload(owner_client, page, _png((10000, 8000)), htmx=htmx)
    assert response.status_code == 422
    body = response.content.decode()
    assert "That image is 10000×8000 px; images may be at most 12000 px" in body
    assert "50 megapixels" in body
    assert ImageAsset.objects.count() == 0
    assert list(tmp_path.rglob("*.*")) == []


def test_a_file_over_10_mb_is_413(owner_client, page):
    upload = SimpleUploadedFile("big.png", b"0" * (10 * 1024 * 1024 + 1))
    response = _upload(owner_client, page, upload)
    assert response.status_code == 413
    assert "larger than 10 MB" in response.content.decode()


def test_no_image_or_no_image_block_is_422(owner_client, page):
    url = reverse("pages:image_upload", args=[page.pk])
    assert owner_client.post(url, {"block_id": _block(page)}, **HX).status_code == 422
    wrong = owner_client.post(url, {"block_id": "nope", "image": _png((10, 10))}, **HX)
    assert wrong.status_code == 422
    assert "Select an image block first." in wrong.content.decode()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_large_images_are_stored_at_most_3200_px(workspace, fmt):
    """A 48-megapixel photo is decoded (JPEG at a reduced scale) and kept at the
    size pages can use, not at full size."""
    image = services.image_upload(workspace=workspace, upload=_png((8000, 6000), fmt))
    assert (image.width, image.height) == (3200, 2400)
    assert sorted(image.variants, key=int) == ["480", "960", "1600", "2400"]


def test_uploads_beyond_the_decode_slots_are_refused_with_429(
    owner_client, page, settings, monkeypatch
):
    """One upload decodes and one waits per process; a third at the same moment
    is told to try again (429) instead of holding a web thread hostage."""
    settings.IMAGE_UPLOAD_WAIT_SECONDS = 0.2
    monkeypatch.setattr(services, "_slots", services._Slots(1))
    slots = services._decode_slots()
    release = threading.Event()
    entered = threading.Barrier(2)

    def busy() -> None:
        with slots.hold(timeout=5):
            entered.wait()
            release.wait(5)

    def waiting() -> None:
        with slots.hold(timeout=5):
            pass

    decoding = threading.Thread(target=busy)
    decoding.start()
    entered.wait()  # the decode slot is taken
    queued = threading.Thread(target=waiting)
    queued.start()  # takes the one waiting place
    try:
        while slots.admitted._value != 0:
            threading.Event().wait(0.01)
        response = _upload(owner_client, page, _png((640, 480)))
    finally:
        release.set()
        decoding.join()
        queued.join()
    assert response.status_code == 429
    assert "The server is busy processing other images" in response.content.decode()
    assert ImageAsset.objects.count() == 0
    # Once the slots are free, the same upload goes through.
    assert _upload(owner_client, page, _png((640, 480))).status_code == 200
    block = documents.find_block(
        page.__class__.objects.get(pk=page.pk).document, _block(page)
    )
    assert block["settings"]["image_id"] == ImageAsset.objects.get().pk
