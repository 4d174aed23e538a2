"""The builder defects of issue 15, each pinned by a test that failed before."""

from __future__ import annotations

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from funnels.models import Step
from pages import documents, services
from pages.models import FunnelTheme, Page
from pages.rendering import RenderContext, render_block
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _png(size=(1600, 900), color="#4f46e5") -> SimpleUploadedFile:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return SimpleUploadedFile("p.png", buf.getvalue(), content_type="image/png")


def _theme_post(theme: FunnelTheme, **changes) -> dict:
    data = {
        "primary_color": theme.primary_color,
        "accent_color": theme.accent_color,
        "text_color": theme.text_color,
        "background_color": theme.background_color,
        "font_family": theme.font_family,
        "button_style": theme.button_style,
        "button_radius": theme.button_radius,
    }
    data.update(changes)
    return data


def test_tripwire_theme_saves_a_colour_only_change(owner_client, owner, workspace):
    """The Tripwire template's theme, as shipped, takes a colour-only change."""
    funnel = services.funnel_create_from_template(
        workspace=workspace, user=owner, template_key="tripwire", name="T"
    )
    page = Page.objects.filter(step__funnel=funnel).first()
    url = reverse("pages:theme", args=[page.pk])
    response = owner_client.post(
        url, _theme_post(funnel.theme, primary_color="#0f766e")
    )
    assert response.status_code == 302
    funnel.theme.refresh_from_db()
    assert funnel.theme.primary_color == "#0f766e"
    assert funnel.theme.radius_px == 999  # still a pill


def test_legacy_out_of_range_radius_does_not_block_pill_theme(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    theme = FunnelTheme.objects.create(
        workspace=workspace,
        funnel=page.step.funnel,
        button_style="pill",
        button_radius=999,
    )
    url = reverse("pages:theme", args=[page.pk])
    response = owner_client.post(url, _theme_post(theme, accent_color="#111111"))
    assert response.status_code == 302
    theme.refresh_from_db()
    assert (theme.accent_color, theme.button_radius) == ("#111111", 60)


def test_refused_theme_says_so_at_the_top(owner_client, workspace):
    """A rounded button with 999 px is refused loudly, nothing saved."""
    page = page_with_blocks("headline", workspace=workspace)
    theme = FunnelTheme.objects.create(workspace=workspace, funnel=page.step.funnel)
    url = reverse("pages:theme", args=[page.pk])
    response = owner_client.post(
        url, _theme_post(theme, primary_color="#000000", button_radius=999)
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'role="alert"' in html
    assert "The theme was not saved" in html
    assert "At most 60 px." in html
    theme.refresh_from_db()
    assert theme.primary_color == "#4f46e5"


def test_canvas_blocks_are_focusable_with_role_and_name(owner_client, workspace):
    page = page_with_blocks("headline", "button", workspace=workspace)
    html = owner_client.get(reverse("pages:editor", args=[page.pk])).content.decode()
    tags = re.findall(r'<div class="pb-block(?: is-selected)?" [^>]*>', html)
    assert len(tags) == 2
    for tag in tags:
        assert 'tabindex="0"' in tag
        assert 'role="group"' in tag
    assert 'aria-label="Headline: Your big, bold promise goes here"' in tags[0]
    assert 'aria-label="Button: Yes! I want this"' in tags[1]


def test_editor_back_link_named_and_save_state_live(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    html = owner_client.get(reverse("pages:editor", args=[page.pk])).content.decode()
    back = re.search(r'<a class="pb-back"[^>]*>', html).group(0)
    assert f'aria-label="Back to {page.step.funnel.name}"' in back
    state = re.search(r'<span[^>]*id="save-state"[^>]*>', html).group(0)
    assert 'role="status"' in state and 'aria-live="polite"' in state
    # The live region survives every edit: it is not inside a swapped partial.
    fragment = owner_client.post(
        reverse("pages:history", args=[page.pk, "undo"]), {"revision": 0}, **HX
    ).content.decode()
    assert "save-state" not in fragment
    assert " onclick=" not in html and " onsubmit=" not in html


def test_viewer_gets_a_read_only_view(client, viewer, workspace):
    """A viewer sees the page but no palette, toolbars, settings or publish."""
    page = page_with_blocks("headline", workspace=workspace)
    client.force_login(viewer)
    response = client.get(reverse("pages:editor", args=[page.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "View only." in html
    assert "Your big, bold promise goes here" in html
    for chrome in (
        'class="pb-block-bar"',
        'id="palette"',
        'id="publish-btn"',
        'id="settings-pane"',
        'id="undo-btn"',
    ):
        assert chrome not in html


def test_viewer_edit_and_publish_are_refused_with_a_real_page(
    client, viewer, workspace
):
    page = page_with_blocks("headline", workspace=workspace)
    client.force_login(viewer)
    edit = client.post(
        reverse("pages:edit", args=[page.pk]),
        {"action": "delete_block", "block_id": "x", "revision": 0},
        **HX,
    )
    assert edit.status_code == 403
    publish = client.post(reverse("pages:publish", args=[page.pk]))
    assert publish.status_code == 403
    html = publish.content.decode()
    assert "You can’t do that here" in html
    assert 'class="sidebar"' in html  # the app around it, not a bare page
    page.refresh_from_db()
    assert page.published_version is None and page.draft_revision == 0


def test_new_video_block_has_no_default_url_and_no_outside_poster():
    from pages import blocks

    assert blocks.get("video").defaults()["url"] == ""
    block = {
        "id": "v",
        "type": "video",
        "settings": {"url": "https://www.youtube.com/watch?v=abcdefghijk"},
    }
    html = render_block(block, RenderContext())
    assert "ytimg" not in html and "background-image" not in html
    assert "youtube-nocookie.com/embed/abcdefghijk" in html  # only in data-embed
    assert "<iframe" not in html and "onclick" not in html
    assert "Plays from youtube-nocookie.com after you click" in html
    # An empty video renders nothing on a published page.
    empty = {"id": "e", "type": "video", "settings": {}}
    assert render_block(empty, RenderContext()).strip() == ""


def test_templates_ship_no_rick_roll():
    from pages import selectors

    for template in selectors.funnel_templates().values():
        for spec in template["steps"]:
            for block in documents.iter_blocks(spec["document"]):
                assert "dQw4w9WgXcQ" not in str(block.get("settings"))


def test_1600px_image_gets_a_1600w_variant(workspace, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    image = services.image_upload(workspace=workspace, upload=_png((1600, 900)))
    assert sorted(image.variants, key=int) == ["480", "960", "1600"]
    assert "1600w" in image.srcset
    html = render_block(
        {"id": "i", "type": "image", "settings": {"image_id": image.pk}},
        RenderContext(images={image.pk: image}),
    )
    assert 'sizes="(max-width: 1120px) 100vw, 1120px"' in html


def test_first_section_image_loads_eagerly(workspace, settings, tmp_path):
    from pages.rendering import render_document

    settings.MEDIA_ROOT = tmp_path
    image = services.image_upload(workspace=workspace, upload=_png((800, 400)))
    doc = {"sections": []}
    for _ in range(2):
        doc = documents.add_block(
            doc, documents.new_block("image", {"image_id": image.pk})
        )
    html = render_document(doc, RenderContext(images={image.pk: image}))
    first, second = html.split("<img")[1:]
    assert 'fetchpriority="high"' in first and 'loading="lazy"' not in first
    assert 'loading="lazy"' in second


def test_public_page_never_asks_for_favicon_ico(owner, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    services.funnel_publish(funnel=page.step.funnel, user=owner)
    html = Page.objects.get(pk=page.pk).published_version.html
    assert '<link rel="icon" href="data:,">' in html


def test_favicon_and_social_image_upload(owner_client, workspace, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    page = page_with_blocks("headline", workspace=workspace)
    response = owner_client.post(
        reverse("pages:settings", args=[page.pk]),
        {
            "name": "A",
            "title": "T",
            "meta_description": "",
            "social_image": "",
            "favicon": "",
            "head_code": "",
            "footer_code": "",
            "favicon_upload": _png((300, 200)),
            "social_image_upload": _png((1600, 840), "#e11d48"),
        },
    )
    assert response.status_code == 302
    page.refresh_from_db()
    assert re.fullmatch(r"/media/icons/[0-9a-f]{32}\.png", page.favicon)
    with open(tmp_path / page.favicon.removeprefix("/media/"), "rb") as fh:
        assert Image.open(fh).size == (64, 64)
    assert re.fullmatch(
        r"http://testserver/media/images/\d{4}/\d{2}/[0-9a-f]{32}-1600\.webp",
        page.social_image,
    )


def test_bad_favicon_upload_is_refused_and_changes_nothing(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    response = owner_client.post(
        reverse("pages:settings", args=[page.pk]),
        {
            "name": "A",
            "title": "New title",
            "favicon_upload": SimpleUploadedFile("x.png", b"nope", "image/png"),
        },
    )
    assert response.status_code == 422
    assert "That file is not a valid image." in response.content.decode()
    page.refresh_from_db()
    assert (page.title, page.favicon) == (page.step.name, "")


def test_log_in_and_sign_up_have_a_main_landmark(client):
    for name in ("accounts:login", "accounts:signup"):
        html = client.get(reverse(name)).content.decode()
        assert html.count("<main") == 1, name


def test_order_form_total_is_tied_to_its_label(workspace):
    from funnels.models import Product, StepOffer

    page = page_with_blocks("order_form", workspace=workspace, kind="order")
    offer = StepOffer.objects.create(
        workspace=workspace,
        step=page.step,
        product=Product.objects.create(workspace=workspace, name="P", price_minor=700),
    )
    block = next(documents.iter_blocks(page.document))
    html = render_block(block, RenderContext(offer=offer))
    label_id = f"total-{block['id']}"
    assert f'<span id="{label_id}">Total</span>' in html
    assert f'<output class="of-total-amount" aria-labelledby="{label_id}"' in html


def test_upsell_email_settings_say_what_really_sends_them(owner_client, workspace):
    page = page_with_blocks("upsell_buttons", workspace=workspace, kind="upsell")
    html = owner_client.get(
        reverse("leads:step_offer", args=[page.step.pk])
    ).content.decode()
    assert "Sent once to each visitor who opts in on this step." not in html
    assert "Saying yes or no to the offer does not send it" in html
    optin = Step.objects.create(
        workspace=workspace, funnel=page.step.funnel, name="O", slug="o", kind="optin"
    )
    html = owner_client.get(
        reverse("leads:step_offer", args=[optin.pk])
    ).content.decode()
    assert "Sent once to each visitor who opts in on this step." in html
