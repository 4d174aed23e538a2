"""What every API v1 endpoint shares: token auth, per-token rate limits, one error
shape, idempotency keys, keyset cursors.

It lives in ``accounts`` (the bottom layer, where tenancy lives) so that each app's
``api.py`` can use it without breaking the import direction; ``config/api.py``
assembles the apps' routers into one NinjaAPI.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from ninja import Field, NinjaAPI, Schema
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle
from pydantic import create_model

from .actors import client_ip
from .models import ApiIdempotencyKey, ApiToken, Workspace
from .selectors import api_token_for_secret
from .services import api_token_touch

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


# ---------------------------------------------------------------- errors
class ErrorBody(Schema):
    status: int
    code: str
    message: str
    fields: dict[str, list[str]] = {}


class ErrorOut(Schema):
    """Every error the API returns has this one shape."""

    error: ErrorBody


def error_response(
    status: int,
    code: str,
    message: str,
    fields: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    body["fields"] = fields or {}
    response = JsonResponse({"error": body}, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


class ApiConflict(HttpError):
    def __init__(self, message: str) -> None:
        super().__init__(409, message)


def _field_name(loc: Sequence[Any]) -> str:
    # pydantic locations look like ("body", "payload", "email") or ("query", "limit")
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "payload")]
    return ".".join(parts) or "body"


def _validation_fields(exc: DjangoValidationError) -> dict[str, list[str]]:
    if hasattr(exc, "error_dict"):
        return {
            ("body" if k == "__all__" else k): [str(m) for m in v]
            for k, v in exc.message_dict.items()
        }
    return {}


def install_error_handlers(api: NinjaAPI) -> None:
    """One shape for every error: ``{"error": {status, code, message, fields}}``."""

    @api.exception_handler(NinjaValidationError)
    def _invalid_input(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
        fields: dict[str, list[str]] = {}
        for err in exc.errors:
            name = _field_name(err.get("loc", ()))
            msg = str(err.get("msg", "is not valid"))
            if err.get("type") == "json_invalid" or (name == "body" and "JSON" in msg):
                msg = "The body is not valid JSON."
            fields.setdefault(name, []).append(msg)
        summary = "; ".join(f"{k}: {' '.join(v)}" for k, v in fields.items())
        return error_response(400, "invalid", f"Invalid input — {summary}", fields)

    @api.exception_handler(DjangoValidationError)
    def _refused(request: HttpRequest, exc: DjangoValidationError) -> HttpResponse:
        fields = _validation_fields(exc)
        message = " ".join(exc.messages) or "The request was refused."
        return error_response(400, "invalid", message, fields)

    @api.exception_handler(AuthenticationError)
    def _unauthenticated(
        request: HttpRequest, exc: AuthenticationError
    ) -> HttpResponse:
        message = exc.message
        if message == "Unauthorized":
            message = (
                "Send an API token in the header `Authorization: Bearer <token>` "
                "(create one in Settings → API)."
            )
        return error_response(
            401, "unauthenticated", message, headers={"WWW-Authenticate": "Bearer"}
        )

    @api.exception_handler(AuthorizationError)
    def _forbidden(request: HttpRequest, exc: AuthorizationError) -> HttpResponse:
        return error_response(403, "forbidden", exc.message)

    @api.exception_handler(PermissionDenied)
    def _denied(request: HttpRequest, exc: PermissionDenied) -> HttpResponse:
        return error_response(
            403, "forbidden", str(exc) or "This token cannot do that."
        )

    @api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
        # The same answer for "not there" and "not yours".
        return error_response(404, "not_found", "Not found.")

    @api.exception_handler(Throttled)
    def _throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
        wait = math.ceil(exc.wait) if exc.wait is not None else 1
        return error_response(
            429,
            "rate_limited",
            f"Too many requests for this token: retry in {wait} s.",
        )

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        if exc.status_code == 400 and "parse request body" in exc.message:
            return error_response(
                400,
                "invalid",
                "The request body is not valid JSON.",
                {"body": ["Send a JSON object with Content-Type: application/json."]},
            )
        codes = {405: "method_not_allowed", 409: "conflict", 413: "too_large"}
        return error_response(
            exc.status_code, codes.get(exc.status_code, "error"), exc.message
        )

    @api.exception_handler(Exception)
    def _crash(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("API error on %s %s", request.method, request.path)
        return error_response(
            500, "server_error", "Something went wrong on our side; try again."
        )


def api_index(request: HttpRequest) -> HttpResponse:
    """/api/v1/ itself: where the reference is."""
    return JsonResponse(
        {
            "name": "OpenFunnels API",
            "version": "1",
            "openapi": request.build_absolute_uri("/api/v1/openapi.json"),
            "docs": request.build_absolute_uri("/api/v1/docs/"),
        }
    )


def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Unknown paths under /api/v1/ answer in the API's shape, not as an HTML page."""
    return error_response(404, "not_found", "No such API endpoint.")


# ---------------------------------------------------------------- auth
class TokenAuth(HttpBearer):
    """``Authorization: Bearer <token>``: the token's workspace becomes the
    request's, and a read-only token may only read."""

    def authenticate(self, request: HttpRequest, token: str) -> ApiToken | None:
        found = api_token_for_secret(secret=token.strip())
        if found is None:
            raise AuthenticationError(message="This API token is not valid.")
        if found.revoked_at is not None:
            raise AuthenticationError(
                message=f"This API token was revoked on {found.revoked_at:%Y-%m-%d}."
            )
        if found.expires_at is not None and found.expires_at <= timezone.now():
            raise AuthenticationError(
                message=f"This API token expired on {found.expires_at:%Y-%m-%d}."
            )
        request.api_token = found  # type: ignore[attr-defined]
        request.workspace = found.workspace  # type: ignore[attr-defined]
        api_token_touch(token=found, ip_address=client_ip(request))
        if request.method not in SAFE_METHODS and not found.can_write:
            raise AuthorizationError(
                message="This token is read-only; changes need a read-write token "
                "(Settings → API)."
            )
        return found


def token_of(request: HttpRequest) -> ApiToken:
    token = getattr(request, "api_token", None)
    if token is None:  # routes always run behind TokenAuth
        raise AuthenticationError()
    return token


def workspace_of(request: HttpRequest) -> Workspace:
    return token_of(request).workspace


# ---------------------------------------------------------------- rate limits
def parse_rate(rate: str) -> tuple[int, int]:
    """``"600/minute"`` → (600, 60)."""
    count, _, period = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}[period.strip()[:1] or "m"]
    return int(count), seconds


class TokenRateThrottle(BaseThrottle):
    """A fixed window per token, counted with one atomic Redis INCR (exact under
    concurrency, across processes). Limit: ``API_RATE_LIMIT`` (e.g. 600/minute)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        token = getattr(request, "api_token", None)
        if token is None:
            return True
        limit, period = parse_rate(settings.API_RATE_LIMIT)
        now = time.time()
        window = int(now // period)
        key = f"api-rate:{token.pk}:{period}:{window}"
        try:
            cache.add(key, 0, timeout=period + 5)
            count = cache.incr(key)
        except Exception:  # Redis down: serve rather than refuse every request
            logger.warning("API rate limit not enforced: cache unavailable")
            return True
        self._local.wait = (window + 1) * period - now
        return count <= limit

    def wait(self) -> float | None:
        return max(getattr(self._local, "wait", 1.0), 1.0)


# ---------------------------------------------------------------- idempotency
IDEMPOTENCY_TTL = timedelta(hours=24)
IDEMPOTENCY_STALE = timedelta(minutes=5)
IDEMPOTENCY_HEADER = "Idempotency-Key"

ViewFunc = TypeVar("ViewFunc", bound=Callable[..., HttpResponse])


def idempotent(view: ViewFunc) -> ViewFunc:
    """Wrap the API's URL views: a POST with an ``Idempotency-Key`` header runs
    once per key and token; a retry gets the stored response (with
    ``Idempotent-Replayed: true``). Only successful responses are kept, so a
    refused request can be corrected and sent again with the same key."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        auth = request.headers.get("Authorization", "")
        if request.method != "POST" or not key or not auth:
            return view(request, *args, **kwargs)
        if len(key) > 200 or not key.isprintable():
            return error_response(
                400,
                "invalid",
                "Idempotency-Key must be at most 200 printable characters.",
                {IDEMPOTENCY_HEADER: ["Use at most 200 printable characters."]},
            )
        scope = hashlib.sha256(auth.encode()).hexdigest()
        digest = hashlib.sha256()
        digest.update(request.method.encode() + b" " + request.path.encode() + b"\n")
        digest.update(request.body)
        fingerprint = digest.hexdigest()
        stored = _reserve(scope, key, fingerprint)
        if stored is not None:
            return stored
        try:
            response = view(request, *args, **kwargs)
        except BaseException:
            ApiIdempotencyKey.objects.filter(scope=scope, key=key).delete()
            raise
        if 200 <= response.status_code < 300 and not response.streaming:
            ApiIdempotencyKey.objects.filter(scope=scope, key=key).update(
                status_code=response.status_code,
                content_type=response.get("Content-Type", "application/json"),
                body=response.content,
            )
        else:
            ApiIdempotencyKey.objects.filter(scope=scope, key=key).delete()
        return response

    return wrapper  # type: ignore[return-value]


def _reserve(scope: str, key: str, fingerprint: str) -> HttpResponse | None:
    """Claim the key (None: go ahead) or answer for it (a replay or a conflict)."""
    now = timezone.now()
    for _attempt in range(2):
        try:
            with transaction.atomic():
                ApiIdempotencyKey.objects.create(
                    scope=scope, key=key, fingerprint=fingerprint, created_at=now
                )
            return None
        except IntegrityError:
            row = ApiIdempotencyKey.objects.filter(scope=scope, key=key).first()
        if row is None:
            continue  # its request failed and let the key go a moment ago
        expired = row.created_at < now - IDEMPOTENCY_TTL
        stale = row.status_code is None and row.created_at < now - IDEMPOTENCY_STALE
        if expired or stale:
            ApiIdempotencyKey.objects.filter(pk=row.pk).delete()
            continue
        if row.fingerprint != fingerprint:
            return error_response(
                409,
                "idempotency_key_reused",
                "This Idempotency-Key was already used with a different request; "
                "use a new key for a new request.",
            )
        if row.status_code is None:
            return error_response(
                409,
                "idempotency_key_in_use",
                "A request with this Idempotency-Key is still running; retry shortly.",
                headers={"Retry-After": "1"},
            )
        response = HttpResponse(
            bytes(row.body or b""),
            status=row.status_code,
            content_type=row.content_type or "application/json",
        )
        response["Idempotent-Replayed"] = "true"
        return response
    return error_response(
        409, "idempotency_key_in_use", "This Idempotency-Key is busy; retry shortly."
    )


def idempotency_keys_purge() -> int:
    cutoff = timezone.now() - IDEMPOTENCY_TTL
    deleted, _ = ApiIdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted


# ---------------------------------------------------------------- cursors
M = TypeVar("M", bound=models.Model)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def encode_cursor(values: list[Any]) -> str:
    raw = json.dumps(values, default=str, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
    except (ValueError, TypeError):
        values = None
    if not isinstance(values, list) or len(values) != 2:
        raise DjangoValidationError(
            {"cursor": "Not a cursor: pass back the next_cursor of a previous page."}
        )
    return values


def keyset_page(
    qs: QuerySet[M], *, cursor: str | None, limit: int, order: str = "-created_at"
) -> tuple[list[M], str | None]:
    """One page after ``cursor`` in ``order`` (a datetime or number column, ties
    broken by id): stable while rows are added, as fast on page 1 as page 1,000."""
    column = order.lstrip("-")
    desc = order.startswith("-")
    if cursor:
        value, pk = decode_cursor(cursor)
        try:
            field = qs.model._meta.get_field(column)
        except FieldDoesNotExist:  # an annotation, e.g. a lower-cased e-mail
            field = None
        if isinstance(field, models.DateTimeField):
            try:
                value = datetime.fromisoformat(str(value))
            except ValueError:
                raise DjangoValidationError({"cursor": "Not a cursor."}) from None
        op = "lt" if desc else "gt"
        qs = qs.filter(
            Q(**{f"{column}__{op}": value}) | Q(**{column: value, f"id__{op}": pk})
        )
    ordering = (order, "-id" if desc else "id")
    rows = list(qs.order_by(*ordering)[: limit + 1])
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        value = getattr(last, column)
        next_cursor = encode_cursor(
            [value.isoformat() if isinstance(value, datetime) else value, last.pk]
        )
    return rows, next_cursor


# ---------------------------------------------------------------- lists
class PageQuery(Schema):
    """The query every list takes: a cursor and a page size."""

    cursor: str | None = Field(
        None, max_length=500, description="next_cursor of the previous page"
    )
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class SyncQuery(PageQuery):
    """A list that can be synced: only what changed since the last sync."""

    updated_since: datetime | None = Field(
        None, description="Only objects changed at or after this time (ISO 8601)"
    )


def page_schema(name: str, item: type[Schema]) -> type[Schema]:
    """The schema of a list's page: ``results`` and ``next_cursor``."""
    return create_model(
        name,
        __base__=Schema,
        results=(list[item], ...),  # type: ignore[valid-type]
        next_cursor=(
            str | None,
            Field(description="Pass back as `cursor` for the next page; null: done"),
        ),
    )


Out = TypeVar("Out")
SinceFilter = Callable[[QuerySet[M], datetime], QuerySet[M]]


def cursor_list(
    qs: QuerySet[M],
    query: PageQuery,
    *,
    out: Callable[[M], Out],
    order: str = "-created_at",
    since: str | SinceFilter[M] = "updated_at",
) -> dict[str, Any]:
    """One page of a list endpoint: ``{"results": [...], "next_cursor": ...}``.

    ``query.updated_since`` (when the query is a :class:`SyncQuery`) keeps the rows
    whose ``since`` column is at or after it, or ``since(qs, when)`` decides for
    lists whose "changed" spans several columns; then a keyset page in ``order``.
    """
    when = getattr(query, "updated_since", None)
    if when is not None:
        qs = (
            since(qs, when) if callable(since) else qs.filter(**{f"{since}__gte": when})
        )
    rows, next_cursor = keyset_page(
        qs, cursor=query.cursor, limit=query.limit, order=order
    )
    return {"results": [out(row) for row in rows], "next_cursor": next_cursor}
