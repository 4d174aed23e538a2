"""Streamed CSV responses: rows are written as they are read, so memory stays flat."""

from __future__ import annotations

import csv
from collections.abc import Iterable

from django.http import StreamingHttpResponse
from django.utils import timezone


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(
    *, header: list[str], rows: Iterable[tuple], name: str
) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # spreadsheet apps then read UTF-8 correctly
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(
                [v.isoformat() if hasattr(v, "isoformat") else v for v in row]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response
