"""CSV writing that a spreadsheet cannot be tricked into running (formula injection).

Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``, ``-``
or ``@`` as a formula (``=HYPERLINK(...)``, ``=WEBSERVICE(...)``), and some skip a
leading tab or carriage return first. Leads, UTM sources and product names are typed
by strangers, so every CSV the app writes goes through ``writer()``: such a text
cell gets a leading apostrophe, which spreadsheets show as text (OWASP's advice).
Numbers stay numbers, so ``-12.50`` is written as it is.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import Any, Protocol

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def cell(value: Any) -> Any:
    """One value as written: dates in ISO format, risky text defused."""
    if hasattr(value, "isoformat"):
        value = value.isoformat()
    risky = isinstance(value, str) and value.startswith(_TRIGGERS)
    if risky and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class _Writable(Protocol):
    def write(self, s: str, /) -> Any: ...


class SafeWriter:
    """``csv.writer`` with every cell passed through ``cell()``."""

    def __init__(self, out: _Writable, **fmt: Any) -> None:
        self._writer = csv.writer(out, **fmt)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out: _Writable, **fmt: Any) -> SafeWriter:
    return SafeWriter(out, **fmt)
