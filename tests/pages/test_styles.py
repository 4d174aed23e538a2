"""Block and section styles: cleaned to a short list of values, rendered the same
on the canvas and the published page, saved through the editor's style panel."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from pages import documents, services, styles
from pages.models import Page
from pages.rendering import RenderContext, render_block, render_document
from tests.pages.factories import page_with_blocks

HX = {"HTTP_HX_REQUEST": "true"}


def test_clean_block_style_keeps_known_values_only():
    assert styles.clean_block_style(
        {
            "color": "#FFAA00",
            "background": "primary",
            "padding": "3",
            "margin": "",
            "align": "center",
            "width": "md",
            "font": "heading",
            "radius": "2",
            "shadow": "1",
            "hide_mobile": "1",
            "evil": "url(javascript:alert(1))",
        }
    ) == {
        "color": "#ffaa00",
        "background": "primary",
        "padding": "3",
        "align": "center",
        "width": "md",
        "font": "heading",
        "radius": "2",
        "shadow": "1",
        "hide_mobile": True,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"color": "red;background:url(x)"}, "Text colour: use a theme colour"),
        ({"background": "#12345"}, "Background: use a theme colour"),
        ({"padding": "9"}, "Padding: “9” is not an option."),
        ({"align": "justify"}, "Alignment: “justify” is not an option."),
        (
            {"hide_mobile": "1", "hide_desktop": "1"},
            "A block hidden on both mobile and desktop would never show",
        ),
    ],
)
def test_bad_style_values_are_refused_by_name(data, message):
    with pytest.raises(ValidationError) as exc:
        styles.clean_block_style(data)
    assert exc.value.messages[0].startswith(message)


def test_styled_block_renders_the_same_wrapper_on_canvas_and_page():
    block = {
        "id": "b1",
        "type": "headline",
        "settings": {"text": "Hi"},
        "style": {
            "color": "#ffffff",
            "background": "dark",
            "padding": "2",
            "hide_mobile": True,
        },
    }
    wrapper = (
        '<div class="of-s of-p-2 of-has-color of-has-bg of-hide-m" '
        'style="--of-c:#ffffff;color:#ffffff;background-color:#0f172a">'
        '<h1 class="of-headline of-size-xl of-align-center">Hi</h1>\n</div>'
    )
    assert render_block(block, RenderContext()) == wrapper
    unstyled = {"id": "b2", "type": "headline", "settings": {"text": "Hi"}}
    assert render_block(unstyled, RenderContext()).startswith("<h1")


def test_section_background_image_with_overlay(settings, tmp_path):
    doc = {"sections": [documents.new_section()]}
    section_id = doc["sections"][0]["id"]
    doc = documents.update_section(
        doc,
        section_id,
        {"bg_image": 7, "overlay": "40", "padding": "3", "hide_desktop": True},
    )

    class Img:
        def url_at(self, width):
            return f"/media/bg-{width}.webp"

    html = render_document(doc, RenderContext(images={7: Img()}))
    assert 'class="of-section of-bg-white of-sp-3 of-hide-d of-has-image"' in html
    assert (
        "background-image:linear-gradient(rgba(15,23,42,0.40),rgba(15,23,42,0.40)),"
        "url(&#x27;/media/bg-1600.webp&#x27;)"
    ) in html
    assert documents.image_ids(doc) == {7}


@pytest.mark.django_db
def test_canvas_shows_the_same_wrapper_inside_the_editor_chrome(workspace):
    page = page_with_blocks("headline", workspace=workspace)
    block = next(documents.iter_blocks(page.document))
    block["style"] = {"shadow": "2", "radius": "3"}
    published = render_block(block, RenderContext())
    canvas = render_block(block, RenderContext(editor=True, page=page))
    assert published.startswith('<div class="of-s of-r-3 of-sh-2"><h1')
    # The same template; the canvas only marks the text that is edited in place.
    canvas = canvas.replace(' data-inplace="text" data-mode="inline"', "")
    assert f'hx-trigger="click">{published}</div></div>' in canvas


@pytest.mark.django_db
def test_style_panel_saves_a_block_style(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    block_id = next(documents.iter_blocks(page.document))["id"]
    response = owner_client.post(
        reverse("pages:block_style", args=[page.pk, block_id]),
        {
            "revision": 0,
            "color": "custom",
            "color_custom": "#112233",
            "background": "",
            "padding": "2",
            "align": "left",
            "hide_mobile": "1",
        },
        **HX,
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert f'id="block-{block_id}"' in html
    assert 'class="of-s of-p-2 of-ta-left of-has-color of-hide-m"' in html
    page.refresh_from_db()
    assert next(documents.iter_blocks(page.document))["style"] == {
        "color": "#112233",
        "padding": "2",
        "align": "left",
        "hide_mobile": True,
    }
    # Undo takes the style off again.
    owner_client.post(
        reverse("pages:history", args=[page.pk, "undo"]), {"revision": 1}, **HX
    )
    page.refresh_from_db()
    assert "style" not in next(documents.iter_blocks(page.document))


@pytest.mark.django_db
def test_bad_style_is_refused_and_nothing_changes(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    block_id = next(documents.iter_blocks(page.document))["id"]
    response = owner_client.post(
        reverse("pages:block_style", args=[page.pk, block_id]),
        {"revision": 0, "color": "custom", "color_custom": "javascript:x"},
        **HX,
    )
    assert response.status_code == 200
    assert "Text colour: use a theme colour" in response.content.decode()
    assert response.headers["HX-Retarget"] == "#editor-alert"
    page.refresh_from_db()
    assert page.draft_revision == 0


@pytest.mark.django_db
def test_stranger_and_viewer_cannot_style(client, stranger, viewer, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    block_id = next(documents.iter_blocks(page.document))["id"]
    url = reverse("pages:block_style", args=[page.pk, block_id])
    client.force_login(stranger)
    assert client.post(url, {"padding": "1"}, **HX).status_code == 404
    client.force_login(viewer)
    assert client.post(url, {"padding": "1"}, **HX).status_code == 403
    assert Page.objects.get(pk=page.pk).draft_revision == 0


@pytest.mark.django_db
def test_section_style_and_settings_pane(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    section_id = page.document["sections"][0]["id"]
    pane = owner_client.get(
        reverse("pages:section_settings", args=[page.pk, section_id]), **HX
    ).content.decode()
    assert "Background image" in pane and "Hide on mobile" in pane
    response = owner_client.post(
        reverse("pages:section_style", args=[page.pk, section_id]),
        {
            "revision": 0,
            "background": "dark",
            "width": "lg",
            "padding": "4",
            "overlay": "30",
            "bg_color_on": "1",
            "bg_color": "#0B1020",
            "color": "white",
            "hide_mobile": "1",
        },
        **HX,
    )
    html = response.content.decode()
    assert html.startswith(
        '<section class="of-section of-bg-dark of-sp-4 of-hide-m" '
        f'id="section-{section_id}"'
    )
    page.refresh_from_db()
    assert page.document["sections"][0]["settings"] == {
        "background": "dark",
        "width": "lg",
        "color": "white",
        "bg_color": "#0b1020",
        "padding": "4",
        "overlay": "30",
        "hide_mobile": True,
        "hide_desktop": False,
    }


@pytest.mark.django_db
def test_published_page_hides_by_device_with_css(owner, workspace):
    page = page_with_blocks("headline", "text", workspace=workspace)
    block_id = next(documents.iter_blocks(page.document))["id"]
    services.page_edit(
        page=page,
        revision=0,
        operation=lambda d: documents.set_block_style(
            d, block_id, {"hide_mobile": True}
        ),
    )
    services.funnel_publish(funnel=page.step.funnel, user=owner)
    html = Page.objects.get(pk=page.pk).published_version.html
    assert '<div class="of-s of-hide-m"><h1' in html
    assert '<body class="of-public">' in html


@pytest.mark.django_db
def test_theme_preset_sets_a_font_pair_served_from_our_static(
    owner_client, owner, workspace
):
    page = page_with_blocks("headline", workspace=workspace)
    url = reverse("pages:theme", args=[page.pk])
    assert "Use the Editorial theme" in owner_client.get(url).content.decode()
    response = owner_client.post(url, {"preset": "editorial"})
    assert response.status_code == 302
    theme = page.step.funnel.theme
    theme.refresh_from_db()
    assert (theme.font_family, theme.primary_color, theme.button_style) == (
        "fraunces-inter",
        "#9a3412",
        "square",
    )
    services.funnel_publish(funnel=page.step.funnel, user=owner)
    html = Page.objects.get(pk=page.pk).published_version.html
    assert "@font-face{font-family:'Fraunces'" in html
    assert "src:url(/static/fonts/fraunces.woff2) format('woff2')" in html
    assert "--of-font-heading:'Fraunces', Georgia" in html
    assert "fonts.googleapis" not in html and "https://" not in html.split("<body")[0]
    bad = owner_client.post(url, {"preset": "nope"})
    assert bad.status_code == 302
    theme.refresh_from_db()
    assert theme.font_family == "fraunces-inter"


@pytest.mark.django_db
def test_section_background_image_upload_and_remove(owner_client, workspace):
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    page = page_with_blocks("headline", workspace=workspace)
    section_id = page.document["sections"][0]["id"]
    buf = io.BytesIO()
    Image.new("RGB", (1800, 900), "#334155").save(buf, "PNG")
    url = reverse("pages:section_image", args=[page.pk, section_id])
    response = owner_client.post(
        url,
        {"revision": 0, "image": SimpleUploadedFile("bg.png", buf.getvalue())},
        **HX,
    )
    html = response.content.decode()
    page.refresh_from_db()
    image_id = page.document["sections"][0]["settings"]["bg_image"]
    assert "of-has-image" in html and "-1600.webp" in html
    assert 'id="settings-pane" hx-swap-oob="innerHTML"' in html
    bad = owner_client.post(
        url, {"revision": 1, "image": SimpleUploadedFile("x.png", b"nope")}, **HX
    )
    assert "That file is not a valid image." in bad.content.decode()
    page.refresh_from_db()
    assert page.document["sections"][0]["settings"]["bg_image"] == image_id
    owner_client.post(url, {"revision": 1, "remove": "1"}, **HX)
    page.refresh_from_db()
    assert page.document["sections"][0]["settings"]["bg_image"] is None
