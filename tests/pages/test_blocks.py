from __future__ import annotations

import pytest

from pages import blocks
from pages.rendering import RenderContext, render_block, video_embed
from pages.sanitize import clean_rich, clean_text

CTX = RenderContext(
    next_url="/f/next/",
    form_action="/f/next/",
    step_urls={"5": "/f/order/"},
    optin_action="/f/start/optin/",
    order_action="/f/start/order/",
    accept_action="/f/start/accept/",
    decline_action="/f/start/decline/",
)


def _render(block_type: str, **settings) -> str:
    return render_block({"id": "b1", "type": block_type, "settings": settings}, CTX)


def test_every_block_type_renders_with_defaults():
    """Each registered block renders its defaults without error (a video without
    a link shows only in the editor, as a prompt to add one)."""
    assert len(blocks.REGISTRY) == 16
    for key in blocks.REGISTRY:
        block = {"id": "b", "type": key, "settings": {}}
        assert render_block(block, RenderContext(editor=True)).strip(), key
        if key != "video":
            assert _render(key).strip(), key


def test_headline_and_subheadline():
    """Headlines keep inline formatting (bold, colour) and are cleaned again as
    they render: no script survives, and plain-text "<" stays text."""
    assert _render(
        "headline",
        text="Big <b>promise</b><script>x()</script>",
        size="lg",
        align="left",
    ) == ('<h1 class="of-headline of-size-lg of-align-left">Big <b>promise</b></h1>\n')
    assert "a &lt; b</h1>" in _render("headline", text="a < b")
    assert 'of-subheadline of-align-center">Support</p>' in _render(
        "subheadline", text="Support"
    )


def test_text_keeps_sanitized_rich_html():
    html = clean_rich(
        '<p onclick="x()">Hi <strong>there</strong><script>alert(1)</script></p>'
    )
    assert html == "<p>Hi <strong>there</strong></p>"
    assert "<p>Hi <strong>there</strong></p>" in _render("text", html=html)


def test_bullets_and_faq():
    out = _render("bullets", items=["One", "Two"], icon="check")
    assert out == '<ul class="of-bullets of-icon-check"><li>One</li><li>Two</li></ul>\n'
    faq = _render("faq", items=["Q1? | A1.", "Q2? | A2."])
    assert faq.count("<details>") == 2
    assert "<summary>Q1?</summary><p>A1.</p>" in faq


def test_image_without_asset_shows_placeholder_only_in_editor():
    """Visitors never see the editor's upload placeholder."""
    assert "Upload an image" not in _render("image")
    editor = RenderContext(editor=True)
    assert "Upload an image" in render_block(
        {"id": "b", "type": "image", "settings": {}}, editor
    )


def test_image_with_asset_has_srcset():

    class Img:
        url = "/media/a-960.webp"
        srcset = "/media/a-480.webp 480w, /media/a-960.webp 960w"
        width, height, alt_text = 960, 500, "Alt"

    ctx = RenderContext(images={3: Img()})
    out = render_block(
        {"id": "b", "type": "image", "settings": {"image_id": 3, "alt": "Cover"}}, ctx
    )
    assert 'srcset="/media/a-480.webp 480w, /media/a-960.webp 960w"' in out
    assert 'alt="Cover"' in out


def test_video_loads_only_on_click():
    """The video block shows a poster button; no iframe until clicked."""
    out = _render("video", url="https://youtu.be/dQw4w9WgXcQ", caption="Watch")
    assert "<iframe" not in out
    assert (
        'data-embed="https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?autoplay=1"'
        in out
    )
    assert (
        video_embed("https://vimeo.com/123456")["embed"]
        == "https://player.vimeo.com/video/123456?autoplay=1"
    )
    assert video_embed("https://cdn.example.com/a.mp4")["kind"] == "mp4"
    assert video_embed("javascript:alert(1)")["kind"] == ""
    assert "Add a YouTube, Vimeo or MP4 link" not in _render("video", url="ftp://x")
    editor = RenderContext(editor=True)
    block = {"id": "v", "type": "video", "settings": {"url": "ftp://x"}}
    assert "Add a YouTube, Vimeo or MP4 link" in render_block(block, editor)


@pytest.mark.parametrize(
    ("settings", "href"),
    [
        ({"action": "next"}, "/f/next/"),
        ({"action": "step", "step_id": "5"}, "/f/order/"),
        ({"action": "url", "url": "https://example.com/x"}, "https://example.com/x"),
    ],
)
def test_button_targets(settings, href):
    assert f'href="{href}"' in _render("button", text="Go", **settings)


def test_optin_form_field_names_are_stable():
    out = _render(
        "optin_form",
        show_name=True,
        show_phone=True,
        custom_fields=["Company size"],
        consent=True,
    )
    assert 'method="post" action="/f/start/optin/"' in out
    assert 'name="_of" value="__OF_FORM_TOKEN__"' in out
    assert 'name="website"' in out  # the honeypot
    for name in (
        'name="email" required',
        'name="first_name"',
        'name="phone"',
        'name="consent"',
        'name="custom_company_size"',
    ):
        assert name in out


def test_order_upsell_countdown_testimonial_divider_spacer():
    order = _render("order_form", bump=True)
    assert 'action="/f/start/order/"' in order and 'name="card"' in order
    upsell = _render("upsell_buttons", accept_text="Yes", decline_text="No")
    assert 'action="/f/start/accept/"' in upsell
    assert 'action="/f/start/decline/"' in upsell
    cd = _render("countdown", mode="evergreen", minutes=15)
    # static/js/page.js runs it: no inline script (the page's CSP forbids ours).
    assert 'data-mode="evergreen" data-minutes="15"' in cd and "<script" not in cd
    t = _render("testimonial", quote="Great", name="Ann", role="CEO")
    assert "“Great”" in t and "<strong>Ann</strong>" in t
    assert (
        _render("divider", style="dashed")
        == '<hr class="of-divider of-divider-dashed">\n'
    )
    assert 'style="height:40px"' in _render("spacer", height=40)


def test_custom_html_is_sandboxed_without_same_origin():
    """Custom HTML only ever renders inside a sandboxed srcdoc iframe."""
    out = _render(
        "custom_html", html="<script>alert(document.cookie)</script>", height=100
    )
    assert 'sandbox="allow-scripts allow-popups"' in out
    assert "allow-same-origin" not in out
    assert 'srcdoc="&lt;script&gt;alert(document.cookie)&lt;/script&gt;"' in out
    assert "<script>" not in out


def test_clean_text_and_settings_strip_scripts_and_handlers():
    assert (
        clean_text('Hi <img src=x onerror="alert(1)"><script>bad()</script>there')
        == "Hi there"
    )
    bt = blocks.get("text")
    form = blocks.settings_form(
        bt,
        data={
            "html": '<a href="javascript:alert(1)" onmouseover="x()">x</a>',
            "align": "left",
        },
    )
    assert form.is_valid()
    cleaned = blocks.clean_settings(bt, form.cleaned_data)
    assert cleaned == {"html": '<a rel="noopener noreferrer">x</a>', "align": "left"}
