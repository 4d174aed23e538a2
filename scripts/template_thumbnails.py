"""Screenshot each funnel template's first page for the template gallery.

    .venv/bin/python scripts/template_thumbnails.py

Renders the page exactly as it would be published (same block templates, the
template's theme and shipped images), opens it in Chromium and saves a 640x480
WebP to static/img/templates/thumbs/<key>.webp. Re-run after changing a
template; the outputs are committed.
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")


def main() -> None:
    import django

    django.setup()
    from django.template.loader import render_to_string
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from pages import selectors
    from pages.models import FunnelTheme
    from pages.rendering import RenderContext, render_document

    out = ROOT / "static" / "img" / "templates" / "thumbs"
    out.mkdir(parents=True, exist_ok=True)
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as pw, tempfile.TemporaryDirectory() as tmp:
        browser = pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        view = browser.new_page(viewport={"width": 1280, "height": 960})
        for key, template in selectors.funnel_templates().items():
            spec = template["steps"][0]
            doc, images = selectors.template_preview_document(spec["document"])
            body = render_document(doc, RenderContext(images=images))
            html = render_to_string(
                "pages/public_page.html",
                {
                    "page": SimpleNamespace(title=spec.get("title", spec["name"])),
                    "body": body,
                    "theme": FunnelTheme(**template.get("theme", {})),
                    "step": SimpleNamespace(name=spec["name"]),
                },
            )
            html = html.replace('"/static/', f'"file://{ROOT}/static/')
            html = html.replace("(/static/", f"(file://{ROOT}/static/")
            path = Path(tmp) / f"{key}.html"
            path.write_text(html)
            view.goto(path.as_uri())
            view.wait_for_load_state("networkidle")
            view.evaluate("document.fonts.ready")
            png = view.screenshot(clip={"x": 0, "y": 0, "width": 1280, "height": 960})
            image = (
                Image.open(io.BytesIO(png))
                .convert("RGB")
                .resize((640, 480), Image.Resampling.LANCZOS)
            )
            target = out / f"{key}.webp"
            image.save(target, "WEBP", quality=80, method=6)
            print(target.relative_to(ROOT), target.stat().st_size, "bytes")
        browser.close()


if __name__ == "__main__":
    main()
