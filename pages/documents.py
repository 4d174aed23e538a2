"""Pure functions over page documents.

A document is ``{"sections": [{"id", "settings", "rows": [{"id", "columns":
[{"id", "blocks": [{"id", "type", "settings"}]}]}]}]}``. Every function returns a
new document and never mutates its input, so the caller can keep the old one for
undo. Unknown ids raise ``DocumentError``.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

Doc = dict[str, Any]
Node = dict[str, Any]

MAX_COLUMNS = 4


class DocumentError(ValueError):
    pass


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def new_block(block_type: str, settings: dict[str, Any] | None = None) -> Node:
    return {"id": new_id(), "type": block_type, "settings": dict(settings or {})}


def new_row(columns: int = 1) -> Node:
    if not 1 <= columns <= MAX_COLUMNS:
        raise DocumentError(f"A row has 1 to {MAX_COLUMNS} columns.")
    return {
        "id": new_id(),
        "columns": [{"id": new_id(), "blocks": []} for _ in range(columns)],
    }


def new_section(settings: dict[str, Any] | None = None, columns: int = 1) -> Node:
    return {
        "id": new_id(),
        "settings": dict(settings or {}),
        "rows": [new_row(columns)],
    }


def _copy(doc: Doc) -> Doc:
    doc = copy.deepcopy(doc) if doc else {}
    doc.setdefault("sections", [])
    return doc


def iter_blocks(doc: Doc):
    for section in doc.get("sections", []):
        for row in section.get("rows", []):
            for column in row.get("columns", []):
                yield from column.get("blocks", [])


def find_block(doc: Doc, block_id: str) -> Node | None:
    for block in iter_blocks(doc):
        if block["id"] == block_id:
            return block
    return None


def _locate_block(doc: Doc, block_id: str) -> tuple[list[Node], int]:
    for section in doc["sections"]:
        for row in section["rows"]:
            for column in row["columns"]:
                for i, block in enumerate(column["blocks"]):
                    if block["id"] == block_id:
                        return column["blocks"], i
    raise DocumentError("That block no longer exists.")


def _column(doc: Doc, column_id: str) -> Node:
    for section in doc["sections"]:
        for row in section["rows"]:
            for column in row["columns"]:
                if column["id"] == column_id:
                    return column
    raise DocumentError("That column no longer exists.")


def _locate_row(doc: Doc, row_id: str) -> tuple[list[Node], int]:
    for section in doc["sections"]:
        for i, row in enumerate(section["rows"]):
            if row["id"] == row_id:
                return section["rows"], i
    raise DocumentError("That row no longer exists.")


def _section_index(doc: Doc, section_id: str) -> int:
    for i, section in enumerate(doc["sections"]):
        if section["id"] == section_id:
            return i
    raise DocumentError("That section no longer exists.")


def _reassign_ids(node: Node) -> Node:
    node = copy.deepcopy(node)
    node["id"] = new_id()
    for key in ("rows", "columns", "blocks"):
        if key in node:
            node[key] = [_reassign_ids(child) for child in node[key]]
    return node


# Blocks ---------------------------------------------------------------------


def add_block(
    doc: Doc,
    block: Node,
    *,
    column_id: str | None = None,
    after_block_id: str | None = None,
    index: int | None = None,
) -> Doc:
    """Insert after a block, into a column (at index or the end), or into a new
    section at the end of the page when neither is given."""
    doc = _copy(doc)
    if after_block_id:
        blocks, i = _locate_block(doc, after_block_id)
        blocks.insert(i + 1, block)
    elif column_id:
        blocks = _column(doc, column_id)["blocks"]
        blocks.insert(len(blocks) if index is None else max(0, index), block)
    else:
        section = new_section()
        section["rows"][0]["columns"][0]["blocks"].append(block)
        doc["sections"].append(section)
    return doc


def update_block(doc: Doc, block_id: str, settings: dict[str, Any]) -> Doc:
    doc = _copy(doc)
    blocks, i = _locate_block(doc, block_id)
    blocks[i]["settings"] = {**blocks[i].get("settings", {}), **settings}
    return doc


def delete_block(doc: Doc, block_id: str) -> Doc:
    doc = _copy(doc)
    blocks, i = _locate_block(doc, block_id)
    del blocks[i]
    return doc


def duplicate_block(doc: Doc, block_id: str) -> tuple[Doc, str]:
    doc = _copy(doc)
    blocks, i = _locate_block(doc, block_id)
    clone = _reassign_ids(blocks[i])
    blocks.insert(i + 1, clone)
    return doc, clone["id"]


def move_block(doc: Doc, block_id: str, *, column_id: str, index: int) -> Doc:
    doc = _copy(doc)
    blocks, i = _locate_block(doc, block_id)
    block = blocks.pop(i)
    target = _column(doc, column_id)["blocks"]
    target.insert(max(0, min(index, len(target))), block)
    return doc


def shift_block(doc: Doc, block_id: str, delta: int) -> Doc:
    """Move a block one place up (-1) or down (+1) within its column; at the edge
    of a column it moves into the previous/next column of the page."""
    doc = _copy(doc)
    columns = [c for s in doc["sections"] for r in s["rows"] for c in r["columns"]]
    for ci, column in enumerate(columns):
        ids = [b["id"] for b in column["blocks"]]
        if block_id not in ids:
            continue
        i = ids.index(block_id)
        j = i + delta
        if 0 <= j < len(ids):
            column["blocks"].insert(j, column["blocks"].pop(i))
        elif 0 <= ci + delta < len(columns):
            block = column["blocks"].pop(i)
            target = columns[ci + delta]["blocks"]
            target.insert(len(target) if delta < 0 else 0, block)
        return doc
    raise DocumentError("That block no longer exists.")


# Sections --------------------------------------------------------------------


def add_section(
    doc: Doc, *, after_section_id: str | None = None, columns: int = 1
) -> tuple[Doc, str]:
    doc = _copy(doc)
    section = new_section(columns=columns)
    if after_section_id:
        doc["sections"].insert(_section_index(doc, after_section_id) + 1, section)
    else:
        doc["sections"].append(section)
    return doc, section["id"]


def update_section(doc: Doc, section_id: str, settings: dict[str, Any]) -> Doc:
    doc = _copy(doc)
    section = doc["sections"][_section_index(doc, section_id)]
    section["settings"] = {**section.get("settings", {}), **settings}
    return doc


def delete_section(doc: Doc, section_id: str) -> Doc:
    doc = _copy(doc)
    del doc["sections"][_section_index(doc, section_id)]
    return doc


def duplicate_section(doc: Doc, section_id: str) -> tuple[Doc, str]:
    doc = _copy(doc)
    i = _section_index(doc, section_id)
    clone = _reassign_ids(doc["sections"][i])
    doc["sections"].insert(i + 1, clone)
    return doc, clone["id"]


def move_section(doc: Doc, section_id: str, delta: int) -> Doc:
    doc = _copy(doc)
    i = _section_index(doc, section_id)
    j = max(0, min(i + delta, len(doc["sections"]) - 1))
    doc["sections"].insert(j, doc["sections"].pop(i))
    return doc


def find_section(doc: Doc, section_id: str) -> Node | None:
    for section in doc.get("sections", []):
        if section["id"] == section_id:
            return section
    return None


# Rows ------------------------------------------------------------------------


def add_row(doc: Doc, section_id: str, *, columns: int = 1) -> tuple[Doc, str]:
    doc = _copy(doc)
    row = new_row(columns)
    doc["sections"][_section_index(doc, section_id)]["rows"].append(row)
    return doc, row["id"]


def delete_row(doc: Doc, row_id: str) -> Doc:
    doc = _copy(doc)
    rows, i = _locate_row(doc, row_id)
    del rows[i]
    return doc


def duplicate_row(doc: Doc, row_id: str) -> tuple[Doc, str]:
    doc = _copy(doc)
    rows, i = _locate_row(doc, row_id)
    clone = _reassign_ids(rows[i])
    rows.insert(i + 1, clone)
    return doc, clone["id"]


def move_row(doc: Doc, row_id: str, delta: int) -> Doc:
    doc = _copy(doc)
    rows, i = _locate_row(doc, row_id)
    j = max(0, min(i + delta, len(rows) - 1))
    rows.insert(j, rows.pop(i))
    return doc


def set_row_columns(doc: Doc, row_id: str, columns: int) -> Doc:
    """Change a row's column count; blocks of removed columns move to the last
    remaining column so nothing is lost."""
    if not 1 <= columns <= MAX_COLUMNS:
        raise DocumentError(f"A row has 1 to {MAX_COLUMNS} columns.")
    doc = _copy(doc)
    rows, i = _locate_row(doc, row_id)
    cols = rows[i]["columns"]
    while len(cols) < columns:
        cols.append({"id": new_id(), "blocks": []})
    while len(cols) > columns:
        cols[-2]["blocks"].extend(cols.pop()["blocks"])
    return doc


def find_row(doc: Doc, row_id: str) -> Node | None:
    for section in doc.get("sections", []):
        for row in section.get("rows", []):
            if row["id"] == row_id:
                return row
    return None


def set_block_style(doc: Doc, block_id: str, style: dict[str, Any]) -> Doc:
    """Replace a block's style (already cleaned by pages.styles)."""
    doc = _copy(doc)
    blocks, i = _locate_block(doc, block_id)
    if style:
        blocks[i]["style"] = dict(style)
    else:
        blocks[i].pop("style", None)
    return doc


def image_ids(doc: Doc) -> set[int]:
    ids = set()
    for section in doc.get("sections", []):
        value = section.get("settings", {}).get("bg_image")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            ids.add(int(value))
    for block in iter_blocks(doc):
        value = block.get("settings", {}).get("image_id")
        if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
            ids.add(int(value))
    return ids
