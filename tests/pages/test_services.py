from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from funnels.models import Funnel
from pages import documents, selectors, services
from pages.models import ImageAsset, Page, PageRevision, PageVersion
from tests.factories import StepFactory
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db


def _headline(page):
    return next(documents.iter_blocks(page.document))


def _set_text(page, text, revision=None):
    block_id = _headline(page)["id"]
    return services.page_edit(
        page=page,
        revision=page.draft_revision if revision is None else revision,
        operation=lambda d: documents.update_block(d, block_id, {"text": text}),
    )


def test_edit_bumps_revision_and_records_history(workspace):
    """Each edit saves the draft, bumps draft_revision and adds an undo entry."""
    page = page_with_blocks("headline", workspace=workspace)
    page = _set_text(page, "One")
    assert page.draft_revision == 1
    assert page.history_pointer == 1
    assert list(
        PageRevision.objects.filter(page=page).values_list("number", flat=True)
    ) == [0, 1]
    assert Page.objects.get(pk=page.pk).document == page.document


def test_conflicting_revision_is_refused_without_overwrite(workspace):
    """An edit based on an old revision (another tab) is refused; nothing changes."""
    page = page_with_blocks("headline", workspace=workspace)
    _set_text(page, "From tab A", revision=0)
    stale = Page.objects.get(pk=page.pk)
    with pytest.raises(services.EditConflict) as exc:
        _set_text(stale, "From tab B", revision=0)
    assert exc.value.messages == [
        "This page changed in another tab — reload to see the latest."
    ]
    assert _headline(Page.objects.get(pk=page.pk))["settings"]["text"] == "From tab A"


def test_undo_and_redo_walk_history_and_new_edit_drops_redo(workspace):
    page = page_with_blocks("headline", workspace=workspace)
    page = _set_text(page, "One")
    page = _set_text(page, "Two")
    page = services.page_undo(page=page, revision=page.draft_revision)
    assert _headline(page)["settings"]["text"] == "One"
    page = services.page_redo(page=page, revision=page.draft_revision)
    assert _headline(page)["settings"]["text"] == "Two"
    page = services.page_undo(page=page, revision=page.draft_revision)
    page = _set_text(page, "Three")
    with pytest.raises(ValidationError, match=r"Nothing to redo\."):
        services.page_redo(page=page, revision=page.draft_revision)
    page = services.page_undo(page=page, revision=page.draft_revision)
    page = services.page_undo(page=page, revision=page.draft_revision)
    assert "text" not in _headline(page)["settings"]
    with pytest.raises(ValidationError, match=r"Nothing to undo\."):
        services.page_undo(page=page, revision=page.draft_revision)


def test_publish_freezes_draft_and_public_never_shows_drafts(
    workspace, owner, public_client, django_capture_on_commit_callbacks
):
    """Publishing renders each page once; later draft edits stay private."""
    page = page_with_blocks("headline", workspace=workspace, slug="start")
    funnel = page.step.funnel
    page = _set_text(page, "Published text")
    [version] = services.funnel_publish(funnel=funnel, user=owner)
    assert version.number == 1
    assert version.published_by == owner
    assert "Published text" in version.html
    _set_text(Page.objects.get(pk=page.pk), "Secret draft")

    client = public_client(workspace)
    response = client.get(f"/{funnel.slug}/")
    assert response.status_code == 200
    assert "Published text" in response.content.decode()
    assert "Secret draft" not in response.content.decode()
    # Only the first-party visitor cookie: no session, no CSRF cookie.
    assert set(response.cookies) == {f"ofv_{workspace.public_id}"}
    assert client.get(f"/{funnel.slug}/start/").status_code == 200
    assert client.get(f"/{funnel.slug}/nope/").status_code == 404
    assert client.get("/no-such-funnel/").status_code == 404

    with django_capture_on_commit_callbacks(execute=True):
        services.funnel_unpublish(funnel=funnel)
    assert client.get(f"/{funnel.slug}/").status_code == 404


def test_rollback_serves_an_earlier_version(workspace, owner, public_client):
    page = page_with_blocks("headline", workspace=workspace)
    funnel = page.step.funnel
    page = _set_text(page, "Version one")
    services.funnel_publish(funnel=funnel, user=owner)
    _set_text(Page.objects.get(pk=page.pk), "Version two")
    services.funnel_publish(funnel=funnel, user=owner)
    v1 = PageVersion.objects.get(page=page, number=1)
    visitor = public_client(workspace)
    assert "Version two" in visitor.get(f"/{funnel.slug}/").content.decode()
    services.page_rollback(page=page, version=v1)
    assert "Version one" in visitor.get(f"/{funnel.slug}/").content.decode()
    # Restoring into the draft is an undoable edit.
    page = services.page_restore_version(
        page=Page.objects.get(pk=page.pk), version=v1, revision=None
    )
    assert _headline(page)["settings"]["text"] == "Version one"


def test_head_and_footer_code_only_on_published_page(workspace, owner):
    page = page_with_blocks("headline", workspace=workspace)
    services.page_update_settings(
        page=page,
        data={
            "head_code": "<script>window.px=1</script>",
            "footer_code": "<!--foot-->",
            "title": "T",
            "noindex": True,
        },
    )
    [version] = services.funnel_publish(funnel=page.step.funnel, user=owner)
    assert "<script>window.px=1</script>" in version.html
    assert "<!--foot-->" in version.html
    assert '<meta name="robots" content="noindex, nofollow">' in version.html


def test_publish_without_steps_is_refused(workspace, owner):
    funnel = Funnel.objects.create(workspace=workspace, name="Empty", slug="empty")
    with pytest.raises(ValidationError, match="Add at least one step"):
        services.funnel_publish(funnel=funnel, user=owner)


TEMPLATES = [
    "lead-magnet",
    "tripwire",
    "product-launch",
    "webinar",
    "webinar-replay",
    "application",
    "free-plus-shipping",
    "membership-launch",
]


def test_eight_templates_in_gallery_order():
    assert list(selectors.funnel_templates()) == TEMPLATES


@pytest.mark.parametrize("key", TEMPLATES)
def test_create_funnel_from_each_template(workspace, owner, key):
    template = selectors.funnel_template(key=key)
    funnel = services.funnel_create_from_template(
        workspace=workspace, user=owner, template_key=key, name="My funnel"
    )
    steps = list(funnel.steps.order_by("position"))
    assert [s.slug for s in steps] == [s["slug"] for s in template["steps"]]
    assert funnel.slug == "my-funnel"
    assert all(s.pages.count() == 1 for s in steps)
    page = steps[0].pages.get()
    assert len(list(documents.iter_blocks(page.document))) >= 5
    # Shipped images became this workspace's own uploads, with variants.
    shipped = {
        b["settings"]["asset"]
        for spec in template["steps"]
        for b in documents.iter_blocks(spec["document"])
        if b["settings"].get("asset")
    }
    images = ImageAsset.objects.filter(workspace=workspace)
    assert images.count() == len(shipped)
    for step in steps:
        for block in documents.iter_blocks(step.pages.get().document):
            assert "asset" not in block["settings"]
            if block["type"] == "image":
                assert images.filter(pk=block["settings"]["image_id"]).exists()
    assert all("480" in image.variants for image in images)
    again = services.funnel_create_from_template(
        workspace=workspace, user=owner, template_key=key, name="My funnel"
    )
    assert again.slug == "my-funnel-2"


def test_tripwire_template_steps():
    kinds = [s["kind"] for s in selectors.funnel_template(key="tripwire")["steps"]]
    assert kinds == ["optin", "order", "upsell", "downsell", "thankyou"]


def test_unknown_template_is_refused(workspace):
    with pytest.raises(ValidationError, match=r"Unknown funnel template\."):
        services.funnel_create_from_template(
            workspace=workspace, user=None, template_key="x", name="n"
        )


def test_page_create_blank_and_for_step(workspace):
    step = StepFactory(funnel__workspace=workspace)
    page = services.page_create_blank(step=step)
    assert page.document == {"sections": []}
    assert page.workspace_id == workspace.pk
    assert services.page_for_step(step=step) == page


# Images ----------------------------------------------------------------------


def _png(size=(800, 600), fmt="PNG", exif=False) -> SimpleUploadedFile:
    image = Image.new("RGB", size, "#336699")
    buf = io.BytesIO()
    kwargs = {}
    if exif:
        ex = Image.Exif()
        ex[0x010F] = "SecretCam"
        kwargs["exif"] = ex
    image.save(buf, fmt, **kwargs)
    return SimpleUploadedFile(
        "photo." + fmt.lower(), buf.getvalue(), content_type="image/png"
    )


def test_image_upload_stores_original_and_webp_variants_without_exif(
    workspace, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    image = services.image_upload(
        workspace=workspace,
        upload=_png((2000, 1000), "JPEG", exif=True),
        alt_text="A <b>cat</b>",
    )
    assert (image.width, image.height) == (2000, 1000)
    assert sorted(image.variants, key=int) == ["480", "960", "1600", "2000"]
    assert image.alt_text == "A cat"
    with default_storage.open(image.variants["960"]) as fh:
        variant = Image.open(fh)
        assert (variant.format, variant.size) == ("WEBP", (960, 480))
    with default_storage.open(image.original.name) as fh:
        assert dict(Image.open(fh).getexif()) == {}
    assert "480w" in image.srcset and "1600w" in image.srcset


def test_small_image_keeps_single_variant(workspace, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    image = services.image_upload(workspace=workspace, upload=_png((300, 200)))
    assert list(image.variants) == ["300"]


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (
            SimpleUploadedFile(
                "fake.png", b"this is not an image", content_type="image/png"
            ),
            "That file is not a valid image.",
        ),
        (
            SimpleUploadedFile(
                "big.png", b"0" * (10 * 1024 * 1024 + 1), content_type="image/png"
            ),
            "That image is larger than 10 MB. Please upload a smaller file.",
        ),
    ],
)
def test_bad_files_are_refused_and_nothing_stored(
    workspace, settings, tmp_path, upload, message
):
    settings.MEDIA_ROOT = tmp_path
    with pytest.raises(ValidationError) as exc:
        services.image_upload(workspace=workspace, upload=upload)
    assert exc.value.messages == [message]
    assert ImageAsset.objects.count() == 0
    assert list(tmp_path.rglob("*.*")) == []


def test_20000_px_image_is_refused(workspace, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    upload = _png((20000, 10), "PNG")
    with pytest.raises(ValidationError) as exc:
        services.image_upload(workspace=workspace, upload=upload)
    assert exc.value.messages == [
        "That image is 20000×10 px; images may be at most 12000 px on a side and 50 "
        "megapixels. Please scale it down and upload it again."
    ]
    assert ImageAsset.objects.count() == 0


def test_decompression_bomb_is_refused(workspace, settings, tmp_path):
    """A tiny file that claims a huge canvas never gets decoded."""
    settings.MEDIA_ROOT = tmp_path
    buf = io.BytesIO()
    Image.new("1", (11000, 11000)).save(buf, "PNG")  # 121 MP, compresses to a few KB
    upload = SimpleUploadedFile("bomb.png", buf.getvalue(), content_type="image/png")
    assert upload.size < 100_000
    with pytest.raises(ValidationError):
        services.image_upload(workspace=workspace, upload=upload)
    assert ImageAsset.objects.count() == 0
    assert list(tmp_path.rglob("*.*")) == []


def test_public_form_post_redirects_to_the_page(workspace, owner, public_client):
    """An opt-in post to a published step lands on that step (no 403/405)."""
    page = page_with_blocks("optin_form", workspace=workspace, slug="thanks")
    services.funnel_publish(funnel=page.step.funnel, user=owner)
    client = public_client(workspace, enforce_csrf_checks=True)
    url = f"/{page.step.funnel.slug}/thanks/"
    response = client.post(url, {"email": "a@b.test"})
    assert response.status_code == 303
    assert response.url == url
    assert response.cookies == {}
    page_html = client.get(url).content.decode()
    assert f'action="{url}optin/"' in page_html
    assert "__OF_FORM_TOKEN__" not in page_html
    assert 'name="_of" value="' in page_html
