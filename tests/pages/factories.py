from __future__ import annotations

from pages import documents
from pages.services import page_create_blank
from tests.factories import StepFactory


def page_with_blocks(*block_types: str, workspace=None, **step_kwargs):
    """A page whose single section/row/column holds the given block types."""
    if workspace is not None:
        step_kwargs["funnel__workspace"] = workspace
    step = StepFactory(**step_kwargs)
    doc = {"sections": [documents.new_section()]}
    column_id = doc["sections"][0]["rows"][0]["columns"][0]["id"]
    for block_type in block_types:
        doc = documents.add_block(
            doc, documents.new_block(block_type), column_id=column_id
        )
    return page_create_blank(step=step, document=doc)
