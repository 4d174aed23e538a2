"""Page builder speed: server time of block edits and moves, and a full canvas
render of a 100-block page. Creates its own scratch workspace and removes it.

    python bench/editor.py        (needs DATABASE_URL / REDIS_URL)
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django

django.setup()

from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.urls import reverse  # noqa: E402

from accounts import services as accounts_services  # noqa: E402
from accounts.models import Membership, User, Workspace  # noqa: E402
from funnels.models import Funnel, Step  # noqa: E402
from pages import blocks, documents  # noqa: E402
from pages.models import Page  # noqa: E402
from pages.rendering import RenderContext, render_document  # noqa: E402
from pages.services import page_create_blank  # noqa: E402

TYPES = [
    "headline",
    "subheadline",
    "text",
    "bullets",
    "button",
    "testimonial",
    "faq",
    "divider",
    "spacer",
    "optin_form",
]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def build_document() -> dict:
    doc: dict = {"sections": []}
    for _ in range(10):
        doc, section_id = documents.add_section(doc)
        column_id = documents.find_section(doc, section_id)["rows"][0]["columns"][0][
            "id"
        ]
        for kind in TYPES:
            block = documents.new_block(kind, blocks.get(kind).defaults())
            doc = documents.add_block(doc, block, column_id=column_id)
    return doc


def main() -> None:
    setup_test_environment()
    tag = uuid.uuid4().hex[:8]
    workspace = Workspace.objects.create(name=f"bench-{tag}")
    user = User.objects.create_user(email=f"bench-{tag}@example.invalid", password=None)
    try:
        Membership.objects.create(user=user, workspace=workspace, role="owner")
        funnel = Funnel.objects.create(
            workspace=workspace, name="Bench", slug=f"bench-{tag}"
        )
        step = Step.objects.create(
            workspace=workspace,
            funnel=funnel,
            name="Opt-in",
            slug="optin",
            kind="optin",
        )
        page = page_create_blank(step=step, document=build_document())
        assert sum(1 for _ in documents.iter_blocks(page.document)) == 100
        client = Client()
        client.force_login(user)
        hx = {"HTTP_HX_REQUEST": "true"}
        client.get(reverse("pages:editor", args=[page.pk]))  # warm up templates

        headlines = [
            b["id"]
            for b in documents.iter_blocks(page.document)
            if b["type"] == "headline"
        ]
        texts = [
            b["id"] for b in documents.iter_blocks(page.document) if b["type"] == "text"
        ]
        edit_times: list[float] = []
        for i in range(-5, 60):  # the first five warm connections and caches
            rev = Page.objects.values_list("draft_revision", flat=True).get(pk=page.pk)
            block_id = headlines[i % len(headlines)]
            start = time.perf_counter()
            r = client.post(
                reverse("pages:block_update", args=[page.pk, block_id]),
                {
                    "text": f"Headline number {i}",
                    "size": "xl",
                    "align": "center",
                    "revision": rev,
                },
                **hx,
            )
            if i >= 0:
                edit_times.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200 and b"Headline number" in r.content, r.content[
                :300
            ]
        move_times: list[float] = []
        for i in range(40):
            rev = Page.objects.values_list("draft_revision", flat=True).get(pk=page.pk)
            start = time.perf_counter()
            r = client.post(
                reverse("pages:edit", args=[page.pk]),
                {
                    "action": "block_up" if i % 2 else "block_down",
                    "block_id": texts[i % len(texts)],
                    "revision": rev,
                },
                **hx,
            )
            move_times.append((time.perf_counter() - start) * 1000)
            assert r.status_code == 200 and b"editor-alert" not in r.content[:200]

        page = Page.objects.select_related("step__funnel").get(pk=page.pk)
        render_times: list[float] = []
        for _ in range(15):
            start = time.perf_counter()
            html = render_document(page.document, RenderContext(editor=True, page=page))
            render_times.append((time.perf_counter() - start) * 1000)
        assert html.count('class="pb-block-bar"') == 100
        public_times: list[float] = []
        for _ in range(15):
            start = time.perf_counter()
            render_document(page.document, RenderContext(editor=False))
            public_times.append((time.perf_counter() - start) * 1000)

        all_edits = edit_times + move_times
        print(
            f"settings edits: p50={statistics.median(edit_times):.1f} ms p95={pct(edit_times, 95):.1f} ms (n={len(edit_times)})"  # noqa: E501
        )
        print(
            f"moves (column re-render): p50={statistics.median(move_times):.1f} ms p95={pct(move_times, 95):.1f} ms (n={len(move_times)})"  # noqa: E501
        )
        print(
            f"render 100 blocks: editor canvas {statistics.median(render_times):.1f} ms, published {statistics.median(public_times):.1f} ms"  # noqa: E501
        )
        print(
            f"bench editor: edit_p50_ms={statistics.median(all_edits):.1f} "
            f"edit_p95_ms={pct(all_edits, 95):.1f} render_100_ms={statistics.median(render_times):.1f}"  # noqa: E501
        )
    finally:
        accounts_services.workspace_delete(workspace=workspace)
        user.delete()


if __name__ == "__main__":
    main()
