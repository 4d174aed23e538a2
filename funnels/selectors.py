from __future__ import annotations

from django.db.models import Count, QuerySet

from accounts.models import Workspace

from .models import Funnel


def funnel_list(*, workspace: Workspace, archived: bool = False) -> QuerySet[Funnel]:
    qs = Funnel.objects.for_workspace(workspace).annotate(step_count=Count("steps"))
    return qs.filter(archived_at__isnull=not archived)
