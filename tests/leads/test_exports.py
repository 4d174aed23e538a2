"""Lead CSV exports written in the background, with progress and a private download."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from leads import exports, services
from leads.models import Lead, LeadExport

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _exports_root(settings, tmp_path):
    settings.EXPORTS_ROOT = tmp_path / "exports"


@pytest.fixture
def leads(workspace, other_workspace):
    for i in range(5):
        Lead.objects.create(
            workspace=workspace,
            email=f"lead{i}@example.com",
            first_source="facebook" if i % 2 else "google",
        )
    Lead.objects.create(workspace=other_workspace, email="theirs@example.com")


def _rows(export: LeadExport) -> list[list[str]]:
    text = exports.export_path(export).read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


@pytest.fixture
def start(workspace, owner, django_capture_on_commit_callbacks):
    """Start an export; its task runs on commit (eagerly in tests)."""

    def run(query: str = "") -> LeadExport:
        with django_capture_on_commit_callbacks(execute=True):
            export = services.lead_export_start(
                workspace=workspace, user=owner, query=query
            )
        export.refresh_from_db()
        return export

    return run


def test_export_writes_the_filtered_list_of_this_workspace(start, leads):
    export = start("source=facebook")
    assert (export.status, export.total, export.done) == ("ready", 2, 2)
    rows = _rows(export)
    assert rows[0][0] == "E-mail"
    assert sorted(r[0] for r in rows[1:]) == ["lead1@example.com", "lead3@example.com"]
    assert export.percent == 100


def test_progress_is_reported_while_writing(
    workspace, owner, leads, monkeypatch, django_capture_on_commit_callbacks
):
    from leads import selectors

    monkeypatch.setattr(exports, "PROGRESS_EVERY", 2)
    rows = selectors.lead_export_rows
    progress = []

    def watched(**kwargs):
        for row in rows(**kwargs):
            progress.append(LeadExport.objects.values_list("done", "total").get())
            yield row

    monkeypatch.setattr(selectors, "lead_export_rows", watched)
    with django_capture_on_commit_callbacks(execute=True):
        services.lead_export_start(workspace=workspace, user=owner, query="")
    assert progress == [(0, 5), (0, 5), (2, 5), (2, 5), (4, 5)]
    assert LeadExport.objects.get().done == 5


def test_a_bad_query_exports_everything_rather_than_failing(start, leads):
    export = start("date_from=yesterday&funnel=abc")
    assert (export.status, export.done) == ("ready", 5)


def test_at_most_three_exports_run_at_once(workspace, owner):
    for _ in range(3):
        LeadExport.objects.create(workspace=workspace, status="running")
    with pytest.raises(ValidationError, match="already running"):
        services.lead_export_start(workspace=workspace, user=owner, query="")


def test_tidy_expires_files_requeues_lost_and_fails_stuck(start, workspace, leads):
    old = start()
    path = exports.export_path(old)
    assert path.exists()
    long_ago = timezone.now() - timezone.timedelta(hours=25)
    LeadExport.objects.filter(pk=old.pk).update(created_at=long_ago)
    lost = LeadExport.objects.create(
        workspace=workspace, created_at=timezone.now() - timezone.timedelta(minutes=5)
    )
    stuck = LeadExport.objects.create(
        workspace=workspace, status="running", created_at=long_ago
    )
    assert exports.lead_exports_tidy() == 2  # the old file, and the stuck one
    old.refresh_from_db()
    lost.refresh_from_db()
    stuck.refresh_from_db()
    assert not path.exists() and old.expired_at is not None
    assert lost.status == "ready"  # queued again (and run, eagerly here)
    assert stuck.status == "failed" and "interrupted" in stuck.error


def test_panel_polls_until_ready_then_offers_the_file(
    owner_client, leads, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            "/leads/exports/",
            {"q": "", "source": "google", "query": "source=facebook"},
            HTTP_HX_REQUEST="true",
        )
    assert "Export queued" in response.content.decode()
    export = LeadExport.objects.get()
    assert export.query == "source=google"  # the filters as they are now win
    body = owner_client.get(
        f"/leads/exports/{export.pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Your export is ready" in body and "3 leads" in body
    assert "hx-trigger" not in body  # polling stops
    download = owner_client.get(f"/leads/exports/{export.pk}/download/")
    assert download.status_code == 200
    assert download["Content-Disposition"].startswith("attachment;")
    content = b"".join(download.streaming_content).decode("utf-8-sig")
    assert content.count("@example.com") == 3


def test_running_export_panel_polls(owner_client, workspace):
    export = LeadExport.objects.create(
        workspace=workspace, status="running", total=1000, done=250
    )
    body = owner_client.get(
        f"/leads/exports/{export.pk}/", HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'hx-trigger="every 1s"' in body
    assert "250 of 1,000 leads" in body and 'value="25"' in body
    assert owner_client.get(f"/leads/exports/{export.pk}/download/").status_code == 404


def test_without_javascript_the_export_has_its_own_page(
    owner_client, leads, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post("/leads/exports/", {"query": ""})
    export = LeadExport.objects.get()
    assert response["Location"] == f"/leads/exports/{export.pk}/"
    page = owner_client.get(response["Location"]).content.decode()
    assert "Download CSV" in page
