"""Anonymous endpoints of published funnels: the opt-in form post."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from funnels.models import Funnel, Step
from funnels.public_forms import FORM_TOKEN_FIELD

from . import services, spam

MAX_FIELDS = 40
MAX_BODY_BYTES = 64 * 1024
IP_LIMIT = (20, 600)  # submissions per IP per 10 minutes
EMAIL_LIMIT = (5, 600)  # submissions per e-mail address per 10 minutes


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def _published_step(funnel_slug: str, step_slug: str) -> Step | None:
    return (
        Step.objects.select_related("funnel")
        .filter(
            funnel__slug=funnel_slug,
            funnel__published_at__isnull=False,
            funnel__archived_at__isnull=True,
            slug=step_slug,
        )
        .first()
    )


def _next_url(step: Step) -> str:
    following = (
        Step.objects.filter(funnel_id=step.funnel_id, position__gt=step.position)
        .order_by("position", "id")
        .values_list("slug", flat=True)
        .first()
    )
    funnel: Funnel = step.funnel
    if following is None:
        return f"/{funnel.slug}/{step.slug}/"
    return f"/{funnel.slug}/{following}/"


def _error_page(
    request: HttpRequest, step: Step, errors: dict, data: dict, status: int
) -> HttpResponse:
    return render(
        request,
        "leads/optin_error.html",
        {"step": step, "errors": errors, "data": data, "back": request.path},
        status=status,
    )


# Public forms are posted from published pages that carry no session and so no CSRF
# cookie; the signed, single-use form token plays that role instead.
@csrf_exempt
@require_POST
def optin_submit(
    request: HttpRequest, funnel_slug: str, step_slug: str
) -> HttpResponse:
    step = _published_step(funnel_slug, step_slug)
    if step is None:
        return HttpResponse("This page is not published.", status=404)
    if len(request.body) > MAX_BODY_BYTES or len(request.POST) > MAX_FIELDS:
        return HttpResponse("This form sent too much data.", status=413)
    data = {k: request.POST.get(k, "") for k in request.POST}
    try:
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
    except spam.SpamError as exc:
        return _error_page(request, step, {"form": [str(exc)]}, data, exc.status)
    try:
        services.lead_capture(
            step=step,
            data=data,
            nonce=token.nonce,
            consent_text=(data.get("consent_text") or "")[:1000],
            ip_address=ip,
            user_agent=request.headers.get("User-Agent", ""),
        )
    except ValidationError as exc:
        errors = exc.message_dict
        errors["form"] = errors.pop("__all__", [])
        return _error_page(request, step, errors, data, 422)
    return HttpResponseRedirect(_next_url(step))
