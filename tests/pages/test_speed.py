"""The page-speed budget: measured at publish, shown in the publish dialog, and
enforced when the workspace says so."""

from __future__ import annotations

import io

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.models import AuditEntry
from pages import documents, services, speed
from pages.models import Page, SpeedBudget
from tests.pages.factories import page_with_blocks

pytestmark = pytest.mark.django_db
HX = {"HTTP_HX_REQUEST": "true"}


def _noisy_png(size) -> SimpleUploadedFile:
    """A photo-like image (noise compresses badly, like a real photo)."""
    import os

    image = Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return SimpleUploadedFile("n.png", buf.getvalue(), content_type="image/png")


def test_measure_counts_bytes_hosts_blocking_and_dimensions(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "a-480.webp").write_bytes(b"x" * 4000)
    (tmp_path / "a-960.webp").write_bytes(b"x" * 9000)
    (tmp_path / "b.webp").write_bytes(b"x" * 1000)
    html = (
        "<!doctype html><html><head>"
        '<link rel="stylesheet" href="/static/css/page.css">'
        "<style>.a{color:red}</style>"
        '<script src="https://pixel.example.net/p.js"></script>'
        '<script async src="https://cdn.example.org/x.js"></script>'
        "</head><body><section>"
        '<img src="/media/a-960.webp" srcset="/media/a-480.webp 480w, '
        '/media/a-960.webp 960w" sizes="(max-width: 1120px) 100vw, 1120px" '
        'width="960" height="500" alt="">'
        '</section><section><img src="/media/b.webp" loading="lazy" alt="">'
        "<script>var x = 1;</script></section></body></html>"
    )
    report = speed.measure(html)
    page_css = (settings.BASE_DIR / "static/css/page.css").stat().st_size
    assert report.html_bytes == len(html.encode())
    assert report.css_bytes == page_css
    # Phone (412 px at 1.75x = 721 px) takes the 960w file, desktop too.
    assert report.first_view_image_bytes == 9000
    assert report.image_bytes == 10000
    assert report.images_without_size == 1
    assert report.outside_hosts == ["cdn.example.org", "pixel.example.net"]
    assert report.render_blocking == ["https://pixel.example.net/p.js"]
    assert report.script_bytes == len(b"var x = 1;")
    assert report.over_budget == ["render_blocking"]
    assert report.score == 100 - 15 - 10 - 5
    assert report.fixes[0].startswith("1 script(s) in the head block rendering")


def test_published_page_records_its_report(owner, workspace):
    page = page_with_blocks("headline", "text", workspace=workspace)
    services.funnel_publish(funnel=page.step.funnel, user=owner)
    version = Page.objects.get(pk=page.pk).published_version
    assert version.speed["html_bytes"] == len(version.html.encode())
    assert version.speed["render_blocking"] == []
    assert version.speed["outside_hosts"] == []
    assert version.speed["score"] == 100


def test_block_mode_refuses_a_page_over_budget_and_changes_nothing(owner, workspace):
    SpeedBudget.objects.create(workspace=workspace, mode="block")
    page = page_with_blocks("headline", workspace=workspace)
    page.head_code = '<script src="https://tags.example.com/t.js"></script>'
    page.save()
    with pytest.raises(ValidationError) as exc:
        services.funnel_publish(funnel=page.step.funnel, user=owner)
    assert "over the workspace's page-speed budget" in exc.value.messages[0]
    page.refresh_from_db()
    assert page.published_version is None and page.versions.count() == 0
    # Warn mode publishes the same page.
    SpeedBudget.objects.filter(workspace=workspace).update(mode="warn")
    services.funnel_publish(funnel=page.step.funnel, user=owner)
    assert Page.objects.get(pk=page.pk).published_version.speed["over_budget"] == [
        "render_blocking"
    ]


def test_heavy_hero_image_goes_over_the_image_budget(
    owner, workspace, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    image = services.image_upload(workspace=workspace, upload=_noisy_png((1600, 900)))
    page = page_with_blocks("image", workspace=workspace)
    block_id = next(documents.iter_blocks(page.document))["id"]
    services.page_edit(
        page=page,
        revision=0,
        operation=lambda d: documents.update_block(d, block_id, {"image_id": image.pk}),
    )
    ((_, report),) = services.funnel_speed_check(funnel=page.step.funnel)
    assert report.first_view_image_bytes > 200 * 1024
    assert "images" in report.over_budget
    assert report.fixes[0].startswith("Images above the fold weigh")


def test_publish_dialog_shows_scores_and_fixes(owner_client, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    page.head_code = '<script src="https://tags.example.com/t.js"></script>'
    page.save()
    url = reverse("pages:publish_check", args=[page.pk])
    fragment = owner_client.get(url, **HX).content.decode()
    assert "<html" not in fragment
    assert 'aria-label="Speed score 80 out of 100, fair"' in fragment
    assert "1 script(s) in the head block rendering" in fragment
    assert "Some pages are over the budget. You can still publish." in fragment
    assert 'id="publish-confirm"' in fragment and " disabled" not in fragment
    full = owner_client.get(url).content.decode()
    assert "<html" in full and 'id="publish-confirm"' in full
    SpeedBudget.objects.create(workspace=workspace, mode="block")
    blocked = owner_client.get(url, **HX).content.decode()
    assert "Publishing is blocked" in blocked
    assert 'id="publish-confirm" disabled' in blocked


def test_budget_settings_admin_only_and_validated(client, owner, member, workspace):
    url = reverse("pages:speed_budget")
    client.force_login(member)
    assert client.get(url).status_code == 200
    assert client.post(url, {"mode": "block"}).status_code == 403
    client.force_login(owner)
    bad = client.post(
        url, {"mode": "block", "max_html_css_kb": 5, "max_first_view_image_kb": 200}
    )
    assert "Between 10 and 2,000 KB." in bad.content.decode()
    assert not SpeedBudget.objects.exists()
    ok = client.post(
        url, {"mode": "block", "max_html_css_kb": 60, "max_first_view_image_kb": 300}
    )
    assert ok.status_code == 302
    budget = SpeedBudget.objects.get(workspace=workspace)
    assert (budget.mode, budget.max_html_css_kb, budget.max_first_view_image_kb) == (
        "block",
        60,
        300,
    )


def test_stranger_cannot_check_another_workspaces_page(client, stranger, workspace):
    page = page_with_blocks("headline", workspace=workspace)
    client.force_login(stranger)
    url = reverse("pages:publish_check", args=[page.pk])
    assert client.get(url).status_code == 404


def test_budget_change_is_audited(client, owner, workspace):
    """Changing the budget writes one audit entry (who, what changed); saving it
    unchanged or refusing bad input writes none."""
    url = reverse("pages:speed_budget")
    client.force_login(owner)
    values = {"mode": "block", "max_html_css_kb": 60, "max_first_view_image_kb": 200}
    assert client.post(url, values).status_code == 302
    assert client.post(url, values).status_code == 302  # the same again
    client.post(url, {**values, "max_html_css_kb": 5})  # refused
    entry = AuditEntry.objects.get(workspace=workspace)
    assert (entry.action, entry.actor_label, entry.target_label) == (
        "settings.speed_budget",
        owner.email,
        "Page-speed budget",
    )
    assert entry.changes == {
        "before": {"mode": "warn", "max_html_css_kb": 40},
        "after": {"mode": "block", "max_html_css_kb": 60},
    }


def test_publish_refused_by_the_budget_is_audited(owner_client, owner, workspace):
    """A publish the budget blocks publishes nothing, and the refusal (which page,
    its score, what is over) is in the audit log under the person who tried."""
    SpeedBudget.objects.create(workspace=workspace, mode="block")
    page = page_with_blocks("headline", workspace=workspace)
    page.head_code = '<script src="https://tags.example.com/t.js"></script>'
    page.save()
    funnel = page.step.funnel
    response = owner_client.post(reverse("pages:publish", args=[page.pk]))
    assert response.status_code == 302
    page.refresh_from_db()
    funnel.refresh_from_db()
    assert page.published_version is None and funnel.published_at is None
    entry = AuditEntry.objects.get(workspace=workspace)
    assert (entry.action, entry.actor_label, entry.target_id) == (
        "funnel.publish_refused",
        owner.email,
        str(funnel.pk),
    )
    assert entry.changes == {
        "after": {
            "reason": "page-speed budget",
            "step": page.step.name,
            "page": page.pk,
            "score": 80,
            "over_budget": ["render_blocking"],
        }
    }
