"""Anonymous endpoints of published funnels: opt-in, checkout, upsells, receipt.

Public pages carry no session, so these posts carry no CSRF cookie: a signed, single-use
form token (funnels.public_forms) plays that role, and the order cookie that one-click
upsells need is SameSite=Lax, so another site cannot make a visitor's browser buy.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    QueryDict,
)
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from analytics import services as analytics
from config import proxies
from funnels.models import BRANCHING_KINDS, Step
from funnels.paths import step_next
from funnels.public_forms import (
    EDGE_FORM_TOKEN,
    EDGE_TOKEN_COOKIE_PREFIX,
    FORM_TOKEN_FIELD,
    FORM_TOKEN_PLACEHOLDER,
    FormToken,
    form_token_issue,
    form_token_read,
)
from pages import services as pages

from . import checkout, services, spam
from .models import Order, OrderStatus, Submission
from .outage import keep_form_when_database_is_down

MAX_FIELDS = 40
MAX_BODY_BYTES = 64 * 1024
# Per client IP (config.proxies) and workspace: behind a trusted proxy each visitor
# has their own budget, so a busy installation takes thousands of posts a minute.
# Submissions per IP per workspace per 10 minutes: FORM_IP_LIMIT (default 20).
IP_LIMIT = (settings.FORM_IP_LIMIT, 600)
EMAIL_LIMIT = (5, 600)  # submissions per e-mail address per workspace per 10 minutes
ORDER_COOKIE = "of_order"
ORDER_COOKIE_SALT = "leads.order-cookie"
ORDER_COOKIE_AGE = 60 * 60 * 24
NOT_YOUR_OFFER = (
    "This offer is not part of your order. Nothing was charged; "
    "please go back to the page you came from."
)


def _client_ip(request: HttpRequest) -> str | None:
    return proxies.client_ip(request.META)


def _published_step(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> Step | None:
    """A live step of the workspace whose public host this is (else None)."""
    return (
        Step.objects.select_related("funnel", "workspace")
        .filter(
            workspace_id=request.public.workspace_id,  # type: ignore[attr-defined]
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
    request: HttpRequest,
    step: Step,
    errors: dict,
    data: dict,
    status: int,
    variant_id: int | None = None,
) -> HttpResponse:
    """The step's own page again (the variant shown) with inline errors and what
    the visitor typed."""
    html = pages.page_render_refused_form(
        step=step,
        page_id=variant_id,
        values=data,
        errors=errors,
        action_query=_utm_query(request),
    )
    if html is None:  # no live page to show: a plain form that keeps the values
        return render(
            request,
            "leads/optin_error.html",
            {"step": step, "errors": errors, "data": data, "back": request.path},
            status=status,
        )
    html = html.replace(
        FORM_TOKEN_PLACEHOLDER,
        form_token_issue(step_id=step.pk, variant_id=variant_id),
    )
    response = HttpResponse(html, status=status)
    response["Cache-Control"] = "private, no-store"
    return response


def _guard(request: HttpRequest, step: Step, data: dict) -> FormToken:
    """Run the bot and abuse checks; return the form's verified token."""
    spam.check_honeypot(data)
    value = data.get(FORM_TOKEN_FIELD, "")
    if value == EDGE_FORM_TOKEN:  # a page nginx served: its logged view
        token = spam.check_edge_token(
            request.COOKIES.get(f"{EDGE_TOKEN_COOKIE_PREFIX}{step.pk}"),
            step_id=step.pk,
        )
    else:
        token = spam.check_form_token(value, step_id=step.pk)
    ip = _client_ip(request)
    if ip:
        spam.rate_limit(
            f"ip:{step.workspace_id}:{ip}",
            limit=IP_LIMIT[0],
            window_seconds=IP_LIMIT[1],
        )
    email = (data.get("email") or "").strip().lower()[:254]
    if email:
        spam.rate_limit(
            f"em:{step.workspace_id}:{email}",
            limit=EMAIL_LIMIT[0],
            window_seconds=EMAIL_LIMIT[1],
        )
    return token


def _read_post(request: HttpRequest) -> dict | HttpResponse:
    if len(request.body) > MAX_BODY_BYTES or len(request.POST) > MAX_FIELDS:
        return HttpResponse("This form sent too much data.", status=413)
    # NUL cannot be stored in PostgreSQL text, and no person types one.
    return {
        k.replace("\x00", ""): request.POST.get(k, "").replace("\x00", "")
        for k in request.POST
    }


UTM_KEYS = ("source", "medium", "campaign", "content", "term")


def _touch_query(request: HttpRequest) -> QueryDict:
    """Where this visit's UTM parameters are: the page the form was posted from, or,
    after a refused post, the form's own URL (which carries them over)."""
    page = request.headers.get("Referer", "")[:2000]
    query = QueryDict(urlsplit(page).query)
    if not any(query.get(f"utm_{k}") for k in UTM_KEYS):
        query = request.GET
    return query


def _utm_query(request: HttpRequest) -> str:
    query = _touch_query(request)
    kept = {
        f"utm_{k}": query.get(f"utm_{k}", "")[:200].replace("\x00", "")
        for k in UTM_KEYS
    }
    return urlencode({k: v for k, v in kept.items() if v})


def _touch(request: HttpRequest) -> dict[str, str]:
    """This visit's touch: its UTM parameters, and the referring site when the form
    was posted from another site's page (our own pages are not a referrer)."""
    page = request.headers.get("Referer", "")[:2000]
    query = _touch_query(request)
    referrer = "" if urlsplit(page).netloc == request.get_host() else page[:500]
    touch = {key: query.get(f"utm_{key}", "")[:200] for key in UTM_KEYS}
    touch["referrer"] = referrer
    return {key: value.replace("\x00", "") for key, value in touch.items()}


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
) -> tuple[Step, dict, FormToken] | HttpResponse:
    """The checks every public form post passes: (step, fields, verified token) or
    a refusal."""
    step = _published_step(request, funnel_slug, step_slug)
    if step is None:
        return HttpResponse("This page is not published.", status=404)
    data = _read_post(request)
    if isinstance(data, HttpResponse):
        return data
    try:
        token = _guard(request, step, data)
    except spam.SpamError as exc:
        return _error_page(
            request, step, {"form": [str(exc)]}, data, exc.status, _shown_variant(data)
        )
    return step, data, token


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
@keep_form_when_database_is_down
def optin_submit(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> HttpResponse:
    accepted = _accept_form(request, funnel_slug, step_slug)
    if isinstance(accepted, HttpResponse):
        return accepted
    step, data, form = accepted
    ref = _visitor(request, step)
    try:
        services.lead_capture(
            step=step,
            data=data,
            nonce=form.nonce,
            visitor_id=ref.public_id if ref else None,
            variant_id=form.variant_id,
            touch=_touch(request),
            first_touch=ref.first_touch if ref else None,
            consent_text=(data.get("consent_text") or "")[:1000],
            # The form had a consent box (its text comes with it): ticking it is
            # required, as the browser already enforces.
            consent_required=bool(data.get("consent_text")),
            ip_address=_client_ip(request),
            user_agent=request.headers.get("User-Agent", "").replace("\x00", "")[:500],
        )
    except ValidationError as exc:
        return _error_page(
            request, step, _field_errors(exc), data, 422, form.variant_id
        )
    return _with_cookie(HttpResponseRedirect(next_url(step)), step, ref)


def _order_cookie(
    response: HttpResponse, request: HttpRequest, order: Order
) -> HttpResponse:
    response.set_cookie(
        ORDER_COOKIE,
        signing.dumps(str(order.public_id), salt=ORDER_COOKIE_SALT),
        max_age=ORDER_COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure(),
    )
    return response


@csrf_exempt
@require_POST
def order_submit(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> HttpResponse:
    accepted = _accept_form(request, funnel_slug, step_slug)
    if isinstance(accepted, HttpResponse):
        return accepted
    step, data, form = accepted
    # Stripe.js posts a PaymentMethod id; the built-in test gateway a test card.
    token = data.pop("payment_method", "") or data.get("card", "")
    data.pop("card", None)
    data.pop("cvc", None)
    data.pop("exp", None)
    ref = _visitor(request, step)
    try:
        result = checkout.order_checkout(
            step=step,
            data=data,
            payment_token=token,
            with_bump=data.get("bump") in {"on", "1", "yes", "true"},
            nonce=form.nonce,
            visitor_id=ref.public_id if ref else None,
            touch=_touch(request),
            ip_address=_client_ip(request),
            user_agent=request.headers.get("User-Agent", "").replace("\x00", "")[:500],
        )
    except ValidationError as exc:
        return _error_page(
            request, step, _field_errors(exc), data, 422, form.variant_id
        )
    if result.action_secret:
        # 3-D Secure: Stripe.js shows the bank's check, then order_confirm verifies.
        response = render(
            request,
            "leads/order_authenticate.html",
            {
                "step": step,
                "client_secret": result.action_secret,
                "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
                "confirm_url": f"{step_url(step)}order/confirm/",
                "back": step_url(step),
            },
        )
        response["Cache-Control"] = "no-store"
        return _order_cookie(_with_cookie(response, step, ref), request, result.order)
    if result.pending:
        response = _pending_page(request, step)
        return _order_cookie(_with_cookie(response, step, ref), request, result.order)
    if not result.ok:
        message = result.message or "Payment failed."
        return _error_page(
            request, step, {"form": [message]}, data, 402, form.variant_id
        )
    response = _with_cookie(HttpResponseRedirect(next_url(step)), step, ref)
    return _order_cookie(response, request, result.order)


def _pending_page(request: HttpRequest, step: Step) -> HttpResponse:
    """The gateway has not answered yet: say so, never show the next step."""
    response = render(
        request,
        "leads/order_pending.html",
        {"step": step, "confirm_url": f"{step_url(step)}order/confirm/"},
        status=202,
    )
    response["Cache-Control"] = "no-store"
    return response


@never_cache
@require_GET
def order_contact(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> HttpResponse:
    """Pre-fill the order form for a visitor who already left their details.

    Only this browser's own visitor cookie finds them (the details it sent itself);
    the page's script reads this same-origin, no other site can.
    """
    step = _published_step(request, funnel_slug, step_slug)
    if step is None:
        return HttpResponse(status=404)
    known = analytics.visitor_cookie_read(
        request.COOKIES.get(analytics.visitor_cookie_name(step.workspace))
    )
    submission = (
        Submission.objects.select_related("lead")
        .filter(
            workspace_id=step.workspace_id,
            visitor_id=known[0],
            lead__erased_at__isnull=True,
        )
        .order_by("-created_at", "-id")
        .first()
        if known
        else None
    )
    if submission is None:
        return HttpResponse(status=204)
    lead = submission.lead
    return JsonResponse(
        {"email": lead.email, "name": lead.name, "phone": lead.phone},
        headers={"Cache-Control": "no-store, private"},
    )


@csrf_exempt
@require_POST
def order_confirm(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> HttpResponse:
    """Back from the bank's check: the gateway says whether the order is paid."""
    step = _published_step(request, funnel_slug, step_slug)
    if step is None:
        return HttpResponse("This page is not published.", status=404)
    order = _visitor_order(request, step)
    if order is None or order.step_id != step.pk:
        message = "We could not find your order. Please fill in the order form again."
        return _error_page(request, step, {"form": [message]}, {}, 409)
    result = checkout.order_confirm(order=order)
    if result.pending:
        return _pending_page(request, step)
    if not result.ok:
        return _error_page(request, step, {"form": [result.message]}, {}, 402)
    return HttpResponseRedirect(next_url(step))


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
    step = _published_step(request, funnel_slug, step_slug)
    if (
        step is None
        or answer not in {"accept", "decline"}
        or step.kind not in BRANCHING_KINDS
    ):
        # Only upsells and downsells answer accept/decline (never an order form).
        return HttpResponse("This page is not published.", status=404)
    data = _read_post(request)
    if isinstance(data, HttpResponse):
        return data
    order = _visitor_order(request, step)
    if answer == "decline":
        ref = None if order else _visitor(request, step)
        if not checkout.upsell_decline(
            order=order, step=step, visitor_id=ref.public_id if ref else None
        ):
            return _error_page(request, step, {"form": [NOT_YOUR_OFFER]}, {}, 409)
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
    if result.off_path:
        return _error_page(request, step, {"form": [NOT_YOUR_OFFER]}, {}, 409)
    if not result.ok:
        return _error_page(request, step, {"form": [result.message]}, {}, 402)
    return HttpResponseRedirect(next_url(step, "accept"))


@never_cache
@xframe_options_sameorigin
@require_GET
def receipt(request: HttpRequest, funnel_slug: str, step_slug: str) -> HttpResponse:
    """The visitor's order summary, for the thank-you page (or opened on its own)."""
    step = _published_step(request, funnel_slug, step_slug)
    order = _visitor_order(request, step) if step else None
    if order is None or order.status == OrderStatus.PENDING:
        return render(request, "leads/receipt.html", {"order": None}, status=404)
    return render(
        request,
        "leads/receipt.html",
        {"order": order, "items": order.items.filter(status="paid")},
    )
