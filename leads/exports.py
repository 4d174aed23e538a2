"""CSV exports: streamed responses, and lead exports written by a worker.

Either way rows are written as they are read, so memory stays flat at any size.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.http import QueryDict, StreamingHttpResponse
from django.utils import timezone

from config import csvsafe


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(
    *, header: list[str], rows: Iterable[tuple], name: str
) -> StreamingHttpResponse:
    writer = csvsafe.writer(_Echo())

    def lines():
        yield "\ufeff"  # spreadsheet apps then read UTF-8 correctly
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


# ------------------------------------------------------ background lead exports
PROGRESS_EVERY = 2000


def export_path(export) -> Path:
    return Path(settings.EXPORTS_ROOT) / export.file_name


def lead_export_run(*, export_id: int) -> str:
    """Write one queued export's CSV, reporting progress as it goes.

    Rows stream from a server-side cursor into a temporary file that is renamed
    into place when complete, so memory stays flat and a half-written file is never
    offered. Idempotent: an export that is not queued is left alone.
    """
    from .forms import LeadFilterForm
    from .models import ExportStatus, LeadExport
    from .selectors import CSV_COLUMNS, lead_export_rows, lead_queryset

    claimed = LeadExport.objects.filter(
        pk=export_id, status=ExportStatus.QUEUED
    ).update(status=ExportStatus.RUNNING)
    if not claimed:
        return "skipped"
    export = LeadExport.objects.select_related("workspace").get(pk=export_id)
    filters = LeadFilterForm(QueryDict(export.query) or None).to_filters()
    workspace = export.workspace
    total = lead_queryset(workspace=workspace, filters=filters).count()
    LeadExport.objects.filter(pk=export.pk).update(total=total)
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    export.file_name = f"{workspace.public_id}/leads-{stamp}-{export.pk}.csv"
    final = export_path(export)
    final.parent.mkdir(parents=True, exist_ok=True)
    partial = final.with_suffix(".part")
    done = 0
    try:
        with partial.open("w", newline="", encoding="utf-8") as out:
            out.write("\ufeff")
            writer = csvsafe.writer(out)
            writer.writerow([label for _, label in CSV_COLUMNS])
            for row in lead_export_rows(workspace=workspace, filters=filters):
                writer.writerow(row)
                done += 1
                if done % PROGRESS_EVERY == 0:
                    LeadExport.objects.filter(pk=export.pk).update(done=done)
        partial.replace(final)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        LeadExport.objects.filter(pk=export.pk).update(
            status=ExportStatus.FAILED,
            error=f"{type(exc).__name__}: {exc}"[:300],
            finished_at=timezone.now(),
        )
        raise
    LeadExport.objects.filter(pk=export.pk).update(
        status=ExportStatus.READY,
        done=done,
        total=max(total, done),
        file_name=export.file_name,
        finished_at=timezone.now(),
    )
    return "ready"


STUCK_AFTER = timedelta(hours=1)
REQUEUE_AFTER = timedelta(minutes=2)


def lead_exports_tidy(*, now=None) -> int:
    """Queue exports the broker never got, fail ones whose worker died, and delete
    files older than EXPORT_TTL_HOURS (the rows stay as a log)."""
    from .models import ExportStatus, LeadExport
    from .tasks import lead_export_task

    now = now or timezone.now()
    for export_id in LeadExport.objects.filter(
        status=ExportStatus.QUEUED, created_at__lt=now - REQUEUE_AFTER
    ).values_list("pk", flat=True):
        lead_export_task.apply_async((export_id,))
    LeadExport.objects.filter(
        status=ExportStatus.RUNNING, created_at__lt=now - STUCK_AFTER
    ).update(
        status=ExportStatus.FAILED,
        error="The export was interrupted. Please start a new one.",
        finished_at=now,
    )
    cutoff = now - timedelta(hours=settings.EXPORT_TTL_HOURS)
    old = LeadExport.objects.filter(
        created_at__lt=cutoff, expired_at__isnull=True
    ).exclude(status__in=[ExportStatus.QUEUED, ExportStatus.RUNNING])
    count = 0
    for export in old:
        if export.file_name:
            export_path(export).unlink(missing_ok=True)
            export_path(export).with_suffix(".part").unlink(missing_ok=True)
        LeadExport.objects.filter(pk=export.pk).update(expired_at=now)
        count += 1
    return count
