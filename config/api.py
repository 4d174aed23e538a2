"""API v1: one NinjaAPI assembled from the apps' routers (``<app>/api.py``).

Shared machinery (token auth, rate limits, errors, idempotency, cursors) lives in
``accounts/apikit.py``; this module only wires it up and mounts the routers.
"""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, path
from ninja import NinjaAPI
from ninja.openapi.docs import Swagger

from accounts import api as accounts_api
from accounts.apikit import (
    IDEMPOTENCY_HEADER,
    TokenAuth,
    TokenRateThrottle,
    api_index,
    idempotent,
    install_error_handlers,
    not_found,
)
from analytics import api as analytics_api
from funnels import api as funnels_api
from leads import api as leads_api
from pages import api as pages_api

DESCRIPTION = """
The OpenFunnels REST API. Authenticate with a workspace API token (Settings → API):
`Authorization: Bearer <token>`. A token sees exactly its own workspace; a
read-only token can only read.

- **Errors** always look like `{"error": {"status", "code", "message", "fields"}}`.
  Another workspace's object is a 404, like a missing one.
- **Lists** are paged by cursor: pass back `next_cursor` as `cursor` until it is
  `null`. Funnels, products, leads and orders take `updated_since` (ISO 8601) for
  syncing.
- **Rate limits** count requests per token; over the limit you get a 429 with
  `Retry-After` (seconds).
- **Idempotency**: send an `Idempotency-Key` header on a POST to make a retry safe;
  the same key and body get the first response again (`Idempotent-Replayed: true`).
"""


class OpenFunnelsAPI(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        schema = super().get_openapi_schema(*args, **kwargs)
        # Idempotency is handled around the whole API (accounts.apikit.idempotent),
        # so its header is documented on every POST here.
        for item in schema["paths"].values():
            operation = item.get("post")
            if operation is None:
                continue
            params = operation.setdefault("parameters", [])
            if any(p.get("name") == IDEMPOTENCY_HEADER for p in params):
                continue
            params.append(
                {
                    "in": "header",
                    "name": IDEMPOTENCY_HEADER,
                    "required": False,
                    "schema": {"type": "string", "maxLength": 200},
                    "description": "Makes a retry of this POST safe: the same key "
                    "and body get the first response again, for 24 hours.",
                }
            )
        return schema


api = OpenFunnelsAPI(
    title="OpenFunnels API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="api-v1",
    auth=TokenAuth(),
    throttle=[TokenRateThrottle()],
    openapi_url="/openapi.json",
    docs=Swagger(settings={"persistAuthorization": False}),
    docs_url="/docs/",
)
install_error_handlers(api)
api.add_router("", accounts_api.router)
api.add_router("", funnels_api.router)
api.add_router("", pages_api.router)
api.add_router("", analytics_api.router)
api.add_router("", leads_api.router)


def urls() -> tuple[list[URLPattern | URLResolver], str, str]:
    patterns, app_name, namespace = api.urls
    # Before ninja's own (empty) root pattern, which would answer 404.
    wrapped: list[URLPattern | URLResolver] = [path("", api_index, name="index")]
    for pattern in patterns:
        if isinstance(pattern, URLPattern):
            pattern.callback = idempotent(pattern.callback)
        wrapped.append(pattern)
    wrapped.append(path("<path:rest>", not_found))
    return wrapped, app_name, namespace
