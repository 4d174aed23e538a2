"""Anonymous endpoints of published funnels: opt-in, checkout, upsells, receipt.

Public pages carry no session, so these posts carry no CSRF cookie: a signed, single-use
form token (funnels.public_forms) plays that role, and the order cookie that one-click
upsells need is SameSite=Lax, so another site cannot make a visitor's browser buy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core import signing
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from analytics import services as analytics
from funnels.models import Step
from funnels.public_forms import FORM_TOKEN_FIELD, form_token_read
from funnels.selectors import step_next

from . import checkout, services, spam
from .models import Order, OrderStatus

MAX_FIELDS = 40
MAX_BODY_BYTES = 64 * 1024
IP_LIMIT = (20, 600)  # submissions per IP per 10 minutes
EMAIL_LIMIT = (5, 600)  # submissions per e-mail address per 10 minutes
ORDER_COOKIE = "of_order"
ORDER_COOKIE_SALT = "leads.order-cookie"
ORDER_COOKIE_AGE = 60 * 60 * 24


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _published_step(funnel_slug: str, step_slug: str) -> Step | None:
    return (
        Step.objects.select_related("funnel", "workspace")
        .filter(
            funnel__slug=funnel_slug,
            funnel__published_at__isnull=False,
            funnel__archived_at__isnull=True,
            slug=step_slug,
        )
        .first()
    )


def step_url(step: Step) -> str:
    return f"/{step.funnel.slug}/{step.slug}/"


def next_url(step: Step, outcome: str | None = None) -> str:
    """Where a visitor goes next: the accept/decline target, else the next step."""
    target = step_next(step=step, outcome=outcome)
    return step_url(target) if target is not None else step_url(step)


def _error_page(
    request: HttpRequest, step: Step, errors: dict, data: dict, status: int
) -> HttpResponse:
    return render(
        request,
        "leads/optin_error.html",
        {"step": step, "errors": errors, "data": data, "back": request.path},
        status=status,
    )


def _guard(request: HttpRequest, step: Step, data: dict) -> str:
    """Run the bot and abuse checks; return the form's one-time nonce."""
    spam.check_honeypot(data)
    token = spam.check_form_token(data.get(FORM_TOKEN_FIELD, ""), step_id=step.pk)
    ip = _client_ip(request)
    if ip:
        spam.rate_limit(f"ip:{ip}", limit=IP_LIMIT[0], window_seconds=IP_LIMIT[1])
    email = (data.get("email") or "").strip().lower()[:254]
    if email:
        spam.rate_limit(
            f"em:{step.workspace_id}:{email}",
            limit=EMAIL_LIMIT[0],
            window_seconds=EMAIL_LIMIT[1],
        )
    return token.nonce


def _read_post(request: HttpRequest) -> dict | HttpResponse:
    if len(request.body) > MAX_BODY_BYTES or len(request.POST) > MAX_FIELDS:
        return HttpResponse("This form sent too much data.", status=413)
    return {k: request.POST.get(k, "") for k in request.POST}


def _touch(request: HttpRequest) -> dict[str, str]:
    """This visit's touch: the UTM parameters of the page the form was posted from."""
    page = request.headers.get("Referer", "")[:2000]
    query = QueryDict(urlsplit(page).query)
    return {
        key: query.get(f"utm_{key}", "")[:200]
        for key in ("source", "medium", "campaign", "content", "term")
    } | {"referrer": page[:500]}


def _visitor(request: HttpRequest, step: Step) -> analytics.VisitorRef | None:
    return analytics.visitor_identify(
        request=request, workspace=step.workspace, funnel=step.funnel, step=step
    )


def _with_cookie(
    response: HttpResponse, step: Step, ref: analytics.VisitorRef | None
) -> HttpResponse:
    return analytics.visitor_cookie_set(response, workspace=step.workspace, visitor=ref)


def _accept_form(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> tuple[Step, dict, str] | HttpResponse:
    """The checks every public form post passes: (step, fields, nonce) or a refusal."""
    step = _published_step(funnel_slug, step_slug)
    if step is None:
        return HttpResponse("This page is not published.", status=404)
    data = _read_post(request)
    if isinstance(data, HttpResponse):
        return data
    try:
        nonce = _guard(request, step, data)
    except spam.SpamError as exc:
        return _error_page(request, step, {"form": [str(exc)]}, data, exc.status)
    return step, data, nonce


def _field_errors(exc: ValidationError) -> dict[str, list[str]]:
    """A service's ValidationError as field errors, form-wide ones under "form"."""
    if not hasattr(exc, "error_dict"):
        return {"form": exc.messages}
    errors = exc.message_dict
    errors["form"] = errors.pop("__all__", [])
    return errors


def _shown_variant(data: dict) -> int | None:
    """The split-test variant the (already verified) form token says was shown."""
    try:
        return form_token_read(data.get(FORM_TOKEN_FIELD, "")).variant_id
    except signing.BadSignature:
        return None


@csrf_exempt
@require_POST
def optin_submit(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> HttpResponse:
    accepted = _accept_form(request, funnel_slug, step_slug)
    if isinstance(accepted, HttpResponse):
        return accepted
    step, data, nonce = accepted
    ref = _visitor(request, step)
    try:
        services.lead_capture(
            step=step,
            data=data,
            nonce=nonce,
            visitor_id=ref.public_id if ref else None,
            variant_id=_shown_variant(data),
            touch=_touch(request),
            first_touch=ref.first_touch if ref else None,
            consent_text=(data.get("consent_text") or "")[:1000],
            ip_address=_client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except ValidationError as exc:
        return _error_page(request, step, _field_errors(exc), data, 422)
    return _with_cookie(HttpResponseRedirect(next_url(step)), step, ref)


@csrf_exempt
@require_POST
def order_submit(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> HttpResponse:
    accepted = _accept_form(request, funnel_slug, step_slug)
    if isinstance(accepted, HttpResponse):
        return accepted
    step, data, nonce = accepted
    ref = _visitor(request, step)
    try:
        result = checkout.order_checkout(
            step=step,
            data=data,
            payment_token=data.get("card", ""),
            with_bump=data.get("bump") in {"on", "1", "yes", "true"},
            nonce=nonce,
            visitor_id=ref.public_id if ref else None,
            touch=_touch(request),
            ip_address=_client_ip(request),
            user_agent=request.headers.get("User-Agent", ""),
        )
    except ValidationError as exc:
        data.pop("card", None)
        return _error_page(request, step, _field_errors(exc), data, 422)
    if not result.ok:
        data.pop("card", None)
        return _error_page(
            request, step, {"form": [result.message or "Payment failed."]}, data, 402
        )
    response = _with_cookie(HttpResponseRedirect(next_url(step)), step, ref)
    response.set_cookie(
        ORDER_COOKIE,
        signing.dumps(str(result.order.public_id), salt=ORDER_COOKIE_SALT),
        max_age=ORDER_COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response


def _visitor_order(request: HttpRequest, step: Step) -> Order | None:
    try:
        public_id = signing.loads(
            request.COOKIES.get(ORDER_COOKIE, ""),
            salt=ORDER_COOKIE_SALT,
            max_age=ORDER_COOKIE_AGE,
        )
    except signing.BadSignature:
        return None
    return (
        Order.objects.select_related("lead")
        .filter(public_id=public_id, workspace_id=step.workspace_id)
        .first()
    )


@csrf_exempt
@require_POST
def upsell_respond(
    request: HttpRequest, funnel_slug: str, step_slug: str, answer: str
) -> HttpResponse:
    step = _published_step(funnel_slug, step_slug)
    if step is None or answer not in {"accept", "decline"}:
        return HttpResponse("This page is not published.", status=404)
    data = _read_post(request)
    if isinstance(data, HttpResponse):
        return data
    order = _visitor_order(request, step)
    if answer == "decline":
        ref = None if order else _visitor(request, step)
        checkout.upsell_decline(
            order=order, step=step, visitor_id=ref.public_id if ref else None
        )
        return HttpResponseRedirect(next_url(step, "decline"))
    if order is None:
        return _error_page(
            request,
            step,
            {
                "form": [
                    "We could not find your order. Please go back to the order form."
                ]
            },
            {},
            409,
        )
    result = checkout.upsell_accept(order=order, step=step)
    if not result.ok:
        return _error_page(request, step, {"form": [result.message]}, {}, 402)
    return HttpResponseRedirect(next_url(step, "accept"))


@never_cache
@xframe_options_sameorigin
@require_GET
def receipt(request: HttpRequest, funnel_slug: str, step_slug: str) -> HttpResponse:
    """The visitor's order summary, for the thank-you page (or opened on its own)."""
    step = _published_step(funnel_slug, step_slug)
    order = _visitor_order(request, step) if step else None
    if order is None or order.status == OrderStatus.PENDING:
        return render(request, "leads/receipt.html", {"order": None}, status=404)
    return render(
        request,
        "leads/receipt.html",
        {"order": order, "items": order.items.filter(status="paid")},
    )
