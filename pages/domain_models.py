"""Custom domains: a host name that serves one funnel (``/`` = its first step)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from accounts.models import Workspace
from funnels.models import Funnel


class Domain(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    # Lower-case, IDNA (punycode) form without port or trailing dot; see
    # pages.services.domain_normalise.
    host = models.CharField(max_length=253, unique=True)
    funnel = models.ForeignKey(Funnel, on_delete=models.CASCADE, related_name="domains")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["host"]

    def __str__(self) -> str:
        return self.host
