"""API v1: the token's own workspace."""

from __future__ import annotations

from datetime import datetime

from django.http import HttpRequest
from ninja import Router, Schema

from .apikit import ErrorOut, token_of

router = Router(tags=["Workspace"])


class TokenInfo(Schema):
    name: str
    role: str
    expires_at: datetime | None


class WorkspaceOut(Schema):
    id: str
    slug: str
    name: str
    time_zone: str
    token: TokenInfo


@router.get(
    "/workspace",
    response={200: WorkspaceOut, 401: ErrorOut, 429: ErrorOut},
    summary="The workspace this token belongs to",
)
def workspace_get(request: HttpRequest) -> WorkspaceOut:
    token = token_of(request)
    workspace = token.workspace
    return WorkspaceOut(
        id=workspace.public_id,
        slug=workspace.slug,
        name=workspace.name,
        time_zone=workspace.time_zone,
        token=TokenInfo(name=token.name, role=token.role, expires_at=token.expires_at),
    )
