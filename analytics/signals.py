"""Signals other apps listen to (analytics imports none of them)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the flush's transaction after visitor rows were stored, with
# ``visitors``: [(workspace_id, lead_id), ...] for the stored visitors already linked
# to a lead. A lead captured before its visitor's first sighting was flushed can take
# its first touch from here.
linked_visitors_stored = Signal()
