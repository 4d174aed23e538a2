"""Who is acting right now, for the audit log.

Services record audit entries without being handed the request: the middleware puts
the request in a context variable, and the API's token auth marks the request with
its token. The actor is resolved only when an entry is written, so requests that
change nothing pay nothing. Celery tasks and commands have no request: their entries
read "system" unless they say who they act for with ``acting_as``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from .models import ApiToken, User


@dataclass(frozen=True)
class Actor:
    label: str
    user: User | None = None
    token: ApiToken | None = None
    ip_address: str | None = None


SYSTEM = Actor(label="system")

_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_explicit: ContextVar[Actor | None] = ContextVar("audit_actor", default=None)


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from, as the app's proxy settings trust it."""
    return request.META.get("REMOTE_ADDR") or None


def actor_for(request: HttpRequest) -> Actor:
    ip = client_ip(request)
    token = getattr(request, "api_token", None)
    if token is not None:
        return Actor(
            label=f"API token “{token.name}” ({token.prefix}…)",
            token=token,
            ip_address=ip,
        )
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return Actor(label=user.email, user=user, ip_address=ip)
    # Not logged in: a visitor's form, a payment provider's webhook, an invitee.
    return Actor(
        label=f"unauthenticated request to {request.path[:120]}", ip_address=ip
    )


def current_actor() -> Actor:
    explicit = _explicit.get()
    if explicit is not None:
        return explicit
    request = _request.get()
    return actor_for(request) if request is not None else SYSTEM


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Attribute the audit entries written inside the block to ``actor``."""
    reset = _explicit.set(actor)
    try:
        yield actor
    finally:
        _explicit.reset(reset)


class AuditActorMiddleware:
    """Make the current request the audit log's source of who and where."""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        reset = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(reset)
