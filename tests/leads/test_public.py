from __future__ import annotations

import time

import pytest

from funnels.public_forms import form_token_issue
from leads.models import Lead, Submission

pytestmark = pytest.mark.django_db


def _token(step, age: float = 10.0) -> str:
    return form_token_issue(step_id=step.pk, now=time.time() - age)


def _post(visitor, step, **data):
    url = f"/{step.funnel.slug}/{step.slug}/optin/"
    return visitor.post(url, data, REMOTE_ADDR="203.0.113.7")


def test_optin_redirects_to_next_step_after_commit(visitor, optin_step, thanks_step):
    """A valid opt-in stores the lead, then redirects to the next step."""
    response = _post(visitor, optin_step, email="v@x.io", _of=_token(optin_step))
    assert response.status_code == 302
    assert response["Location"] == "/guide/thanks/"
    assert Lead.objects.get().email == "v@x.io"
    assert "sessionid" not in response.cookies


def test_inline_errors_keep_typed_values(visitor, optin_step, thanks_step):
    """A malformed e-mail gets a 422 page with the message and the typed values."""
    response = _post(
        visitor, optin_step, email="nope", first_name="Zed", _of=_token(optin_step)
    )
    assert response.status_code == 422
    body = response.content.decode()
    assert "Enter a valid e-mail address" in body
    assert 'value="nope"' in body
    assert 'value="Zed"' in body
    assert Lead.objects.count() == 0


@pytest.mark.parametrize(
    ("extra", "status", "message"),
    [
        ({"website": "http://spam"}, 400, "could not be accepted"),
        ({"_of": "forged"}, 400, "This form is not valid"),
        ({"_of": None}, 400, "This form is not valid"),
        ({"_of": "fresh"}, 400, "That was quick"),
    ],
)
def test_bots_are_refused(visitor, optin_step, thanks_step, extra, status, message):
    """Honeypot, forged or missing token and a too-fast fill are refused."""
    data = {"email": "bot@x.io", "_of": _token(optin_step)}
    if extra.get("_of") == "fresh":
        extra = {"_of": _token(optin_step, age=0)}
    data.update({k: v for k, v in extra.items() if v is not None})
    if extra.get("_of", "") is None:
        data.pop("_of")
    response = _post(visitor, optin_step, **data)
    assert response.status_code == status
    assert message in response.content.decode()
    assert Lead.objects.count() == 0


def test_replayed_post_is_one_submission(visitor, optin_step, thanks_step):
    """Posting the same served form twice stores one submission."""
    token = _token(optin_step)
    _post(visitor, optin_step, email="r@x.io", _of=token)
    second = _post(visitor, optin_step, email="r@x.io", _of=token)
    assert second.status_code == 302
    assert Submission.objects.count() == 1


def test_rate_limit_per_email(visitor, optin_step, thanks_step):
    """The sixth post for one e-mail within ten minutes gets 429."""
    codes = [
        _post(visitor, optin_step, email="rl@x.io", _of=_token(optin_step)).status_code
        for _ in range(6)
    ]
    assert codes == [302] * 5 + [429]


def test_unknown_or_unpublished_step_is_404(visitor, optin_step, funnel):
    """A step that does not exist, or an unpublished funnel, answers 404."""
    assert visitor.post("/guide/nope/optin/", {"email": "a@b.co"}).status_code == 404
    funnel.published_at = None
    funnel.save()
    response = _post(visitor, optin_step, email="a@b.co", _of=_token(optin_step))
    assert response.status_code == 404


def test_get_is_not_allowed(visitor, optin_step):
    """A GET on the opt-in endpoint is 405, not a 500."""
    assert visitor.get("/guide/optin/optin/").status_code == 405


def test_huge_body_is_refused(visitor, optin_step):
    """A 1 MB field value is refused with 413 and nothing is written."""
    response = _post(
        visitor,
        optin_step,
        email="a@b.co",
        note="x" * 1_000_000,
        _of=_token(optin_step),
    )
    assert response.status_code == 413
    assert Lead.objects.count() == 0
