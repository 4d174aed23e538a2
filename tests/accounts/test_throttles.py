"""Log-in, password reset and sign-up are throttled per account and per client IP."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from accounts import throttles
from tests.factories import PASSWORD, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

HERE = "203.0.113.10"


@pytest.fixture
def user(settings, workspace):
    # A fast hasher: these tests check passwords dozens of times.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    person = UserFactory(email="target@acme.test")
    MembershipFactory(user=person, workspace=workspace, role="owner")
    return person


def _login(client, password: str, ip: str = HERE, email: str = "target@acme.test"):
    return client.post(
        reverse("accounts:login"),
        {"username": email, "password": password},
        REMOTE_ADDR=ip,
    )


def test_60_wrong_passwords_then_the_right_one_is_refused(client, user):
    """After 10 failures from one place the form refuses further tries, the right
    password included, with a clear message and 429; nobody is logged in."""
    codes = [_login(client, f"guess-{n}").status_code for n in range(60)]
    assert codes == [200] * throttles.LOGIN_PAIR_LIMIT + [429] * 50
    response = _login(client, PASSWORD)
    assert response.status_code == 429
    assert throttles.LOGIN_MESSAGE in response.content.decode().replace("&#x27;", "'")
    assert "_auth_user_id" not in client.session


def test_the_owner_elsewhere_is_not_locked_out_by_a_guesser(client, user):
    """The account itself stays open from another place (up to the account limit)."""
    for n in range(30):
        _login(client, f"guess-{n}")
    assert _login(client, PASSWORD, ip="198.51.100.20").status_code == 302


def test_guessing_spread_over_many_ips_hits_the_account_limit(client, user):
    """A botnet trying one account from many addresses is stopped per account."""
    for n in range(throttles.LOGIN_ACCOUNT_LIMIT):
        assert _login(client, f"guess-{n}", ip=f"198.51.100.{n + 1}").status_code == 200
    assert _login(client, PASSWORD, ip="192.0.2.77").status_code == 429


def test_one_ip_trying_many_accounts_is_stopped(client, user):
    """Spraying one password over many accounts from one place is limited per IP,
    whether or not the accounts exist."""
    for n in range(throttles.LOGIN_IP_LIMIT):
        _login(client, "Summer2026!", email=f"someone{n}@acme.test")
    assert _login(client, PASSWORD).status_code == 429


def test_a_successful_login_clears_the_failures_from_that_place(client, user):
    """Nine typos, a success, nine more typos: a person is never locked out."""
    for n in range(throttles.LOGIN_PAIR_LIMIT - 1):
        _login(client, f"typo-{n}")
    assert _login(client, PASSWORD).status_code == 302
    client.logout()
    for n in range(throttles.LOGIN_PAIR_LIMIT - 1):
        assert _login(client, f"typo-{n}").status_code == 200
    assert _login(client, PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_each_visitor_has_their_own_budget(
    client, user, settings
):
    """Through a trusted proxy the limit follows the client, not the proxy."""
    settings.TRUSTED_PROXIES = ["10.0.0.2"]
    for n in range(throttles.LOGIN_PAIR_LIMIT):
        client.post(
            reverse("accounts:login"),
            {"username": "target@acme.test", "password": f"guess-{n}"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="192.0.2.50",
        )
    owner = client.post(
        reverse("accounts:login"),
        {"username": "target@acme.test", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )
    assert owner.status_code == 302


def _reset(client, email: str, ip: str = HERE):
    return client.post(
        reverse("accounts:password_reset"), {"email": email}, REMOTE_ADDR=ip
    )


def test_30_reset_requests_send_3_emails(client, user):
    """Resets are limited per address: 3 e-mails an hour, then a clear message."""
    codes = [_reset(client, "target@acme.test").status_code for _ in range(30)]
    assert codes == [302] * 3 + [429] * 27
    assert len(mail.outbox) == 3
    refused = _reset(client, "target@acme.test")
    assert "Too many reset requests" in refused.content.decode()


def test_reset_limit_reveals_no_accounts(client, user):
    """An address without an account is limited exactly like one with it."""
    codes = [_reset(client, "ghost@acme.test").status_code for _ in range(4)]
    assert codes == [302] * 3 + [429]
    assert mail.outbox == []


def test_reset_requests_from_one_ip_are_limited(client, user):
    """One place asking for many addresses is stopped per IP."""
    limit = throttles.RESET_IP_LIMIT[0]
    codes = [_reset(client, f"p{n}@acme.test").status_code for n in range(limit + 1)]
    assert codes == [302] * limit + [429]


def test_a_password_reset_unlocks_the_account(client, user):
    """Whoever can read the account's mail and sets a new password gets back in."""
    for n in range(throttles.LOGIN_ACCOUNT_LIMIT):
        _login(client, f"guess-{n}", ip=f"198.51.100.{n + 1}")
    assert _login(client, PASSWORD, ip="192.0.2.1").status_code == 429
    _reset(client, "target@acme.test", ip="192.0.2.1")
    link = next(line for line in mail.outbox[0].body.splitlines() if "/reset/" in line)
    form = client.get(link.split("testserver", 1)[1], follow=True)
    done = client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "brand-new-pass-42", "new_password2": "brand-new-pass-42"},
    )
    assert done.status_code == 302
    assert _login(client, "brand-new-pass-42", ip="192.0.2.1").status_code == 302


def test_signup_is_limited_per_address(client):
    """Sign-up cannot be used to flood an inbox: 3 e-mails an hour per address."""
    codes = [
        client.post(
            reverse("accounts:signup"), {"email": "flood@acme.test"}, REMOTE_ADDR=HERE
        ).status_code
        for _ in range(5)
    ]
    assert codes == [302] * 3 + [429] * 2
    assert len(mail.outbox) == 3


def test_signup_with_the_mail_server_down_says_so(client, settings):
    """A real SMTP connection refused: a clear 503 on the form, not a 500, and the
    same for any address."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
    response = client.post(reverse("accounts:signup"), {"email": "new@acme.test"})
    assert response.status_code == 503
    assert "We could not send the e-mail just now" in response.content.decode()
