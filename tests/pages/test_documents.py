from __future__ import annotations

import pytest

from pages import documents as d


def _doc():
    doc, _ = d.add_section({"sections": []}, columns=2)
    col_a, col_b = (c["id"] for c in doc["sections"][0]["rows"][0]["columns"])
    for name in ("a", "b", "c"):
        doc = d.add_block(
            doc, {"id": name, "type": "text", "settings": {}}, column_id=col_a
        )
    return doc, col_a, col_b


def _ids(doc, col):
    return [b["id"] for b in d._column(doc, col)["blocks"]]


def test_add_block_at_end_of_column_and_after_block():
    """Blocks append to a column, or land right after a given block."""
    doc, col_a, _ = _doc()
    assert _ids(doc, col_a) == ["a", "b", "c"]
    doc = d.add_block(
        doc, {"id": "x", "type": "text", "settings": {}}, after_block_id="a"
    )
    assert _ids(doc, col_a) == ["a", "x", "b", "c"]


def test_add_block_without_target_creates_a_section():
    """With no column or anchor, a block gets its own new section at the end."""
    doc = d.add_block({"sections": []}, {"id": "x", "type": "text", "settings": {}})
    assert len(doc["sections"]) == 1
    assert doc["sections"][0]["rows"][0]["columns"][0]["blocks"][0]["id"] == "x"


def test_operations_do_not_mutate_input():
    """Every operation returns a new document; the old one stays for undo."""
    doc, col_a, _ = _doc()
    d.delete_block(doc, "a")
    d.update_block(doc, "b", {"html": "changed"})
    assert _ids(doc, col_a) == ["a", "b", "c"]
    assert d.find_block(doc, "b")["settings"] == {}


def test_update_merges_settings():
    """Updating a block merges the new settings into the old ones."""
    doc, _, _ = _doc()
    doc = d.update_block(doc, "a", {"html": "one", "align": "left"})
    doc = d.update_block(doc, "a", {"align": "center"})
    assert d.find_block(doc, "a")["settings"] == {"html": "one", "align": "center"}


def test_move_block_between_columns_and_shift():
    """Blocks move to another column at an index, and shift up/down by one."""
    doc, col_a, col_b = _doc()
    doc = d.move_block(doc, "b", column_id=col_b, index=0)
    assert _ids(doc, col_a) == ["a", "c"]
    assert _ids(doc, col_b) == ["b"]
    doc = d.shift_block(doc, "c", -1)
    assert _ids(doc, col_a) == ["c", "a"]
    doc = d.shift_block(doc, "a", 1)  # at the end of column A: into column B, first
    assert _ids(doc, col_a) == ["c"]
    assert _ids(doc, col_b) == ["a", "b"]


def test_duplicate_block_gets_new_id_and_delete_removes():
    """A duplicate sits right after the original with a fresh id."""
    doc, col_a, _ = _doc()
    doc, new_id = d.duplicate_block(doc, "b")
    assert _ids(doc, col_a) == ["a", "b", new_id, "c"]
    assert new_id != "b"
    doc = d.delete_block(doc, "b")
    assert _ids(doc, col_a) == ["a", new_id, "c"]


def test_unknown_ids_raise():
    """Operations on ids that no longer exist raise DocumentError."""
    doc, _, _ = _doc()
    with pytest.raises(d.DocumentError):
        d.delete_block(doc, "nope")
    with pytest.raises(d.DocumentError):
        d.move_block(doc, "a", column_id="nope", index=0)
    with pytest.raises(d.DocumentError):
        d.delete_section(doc, "nope")
    with pytest.raises(d.DocumentError):
        d.delete_row(doc, "nope")


def test_sections_add_move_duplicate_delete():
    """Sections are added after an anchor, moved, duplicated with new ids, deleted."""
    doc, _, _ = _doc()
    first = doc["sections"][0]["id"]
    doc, second = d.add_section(doc)
    doc, third = d.add_section(doc, after_section_id=first)
    assert [s["id"] for s in doc["sections"]] == [first, third, second]
    doc = d.move_section(doc, second, -1)
    assert [s["id"] for s in doc["sections"]] == [first, second, third]
    doc, copy_id = d.duplicate_section(doc, first)
    copy = d.find_section(doc, copy_id)
    assert [b["id"] for b in d.iter_blocks({"sections": [copy]})] != ["a", "b", "c"]
    assert len(list(d.iter_blocks({"sections": [copy]}))) == 3
    doc = d.delete_section(doc, copy_id)
    assert [s["id"] for s in doc["sections"]] == [first, second, third]


def test_rows_add_columns_move_duplicate_delete():
    """Rows have 1 to 4 columns; shrinking a row keeps its blocks."""
    doc, _, _ = _doc()
    section = doc["sections"][0]["id"]
    first_row = doc["sections"][0]["rows"][0]["id"]
    doc, row2 = d.add_row(doc, section, columns=3)
    assert len(d.find_row(doc, row2)["columns"]) == 3
    with pytest.raises(d.DocumentError):
        d.add_row(doc, section, columns=5)
    doc = d.move_row(doc, row2, -1)
    assert [r["id"] for r in doc["sections"][0]["rows"]] == [row2, first_row]
    doc = d.set_row_columns(doc, first_row, 1)
    assert [b["id"] for b in d.find_row(doc, first_row)["columns"][0]["blocks"]] == [
        "a",
        "b",
        "c",
    ]
    doc, row3 = d.duplicate_row(doc, first_row)
    doc = d.delete_row(doc, row2)
    assert [r["id"] for r in doc["sections"][0]["rows"]] == [first_row, row3]


def test_image_ids_collects_referenced_images():
    """image_ids lists every image referenced by any block."""
    doc = d.add_block(
        {"sections": []}, {"id": "i", "type": "image", "settings": {"image_id": 7}}
    )
    doc = d.add_block(
        doc, {"id": "t", "type": "testimonial", "settings": {"image_id": "9"}}
    )
    assert d.image_ids(doc) == {7, 9}
