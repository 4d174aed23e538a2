"""What a sequence e-mail links to, on the workspace's public host: the one-click
unsubscribe (RFC 8058), the open pixel and the click redirect.

Tokens are random ids, looked up within the host's workspace: another
workspace's host answers 404. The redirect goes only to an address the e-mail
itself carried (stored with the send), so it cannot be made an open redirect.
"""

from __future__ import annotations

import base64

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from .models import SequenceEnrollment
from .sequences import services

PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _workspace_id(request: HttpRequest) -> int:
    public = getattr(request, "public", None)
    if public is None:
        raise Http404("Not a public host")
    return public.workspace_id


# A mail client's one-click POST carries no cookie and no CSRF token: the
# unguessable token in the address is the authority (RFC 8058).
@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token) -> HttpResponse:
    workspace_id = _workspace_id(request)
    enrollment = (
        SequenceEnrollment.objects.select_related("lead", "workspace")
        .filter(public_id=token, workspace_id=workspace_id)
        .first()
    )
    if enrollment is None:
        raise Http404("No such subscription")
    done = enrollment.lead.unsubscribed_at is not None
    if request.method == "POST":
        services.lead_unsubscribe(
            enrollment_public_id=str(token), workspace_id=workspace_id
        )
        done = True
    return render(
        request,
        "leads/unsubscribe.html",
        {"workspace": enrollment.workspace, "done": done},
    )


@never_cache
@require_GET
def opened(request: HttpRequest, token) -> HttpResponse:
    services.send_opened(send_public_id=str(token), workspace_id=_workspace_id(request))
    return HttpResponse(PIXEL, content_type="image/gif")


@never_cache
@require_GET
def clicked(request: HttpRequest, token, index: int) -> HttpResponse:
    url = services.send_clicked(
        send_public_id=str(token), index=index, workspace_id=_workspace_id(request)
    )
    if url is None:
        raise Http404("No such link")
    return HttpResponseRedirect(url)
