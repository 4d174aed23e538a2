"""Limits on log-in, password reset and sign-up, per account and per client IP.

Built on the project's Redis limiter (config.ratelimit) rather than django-axes:
the limits cover three flows, not only log-in (axes throttles authentication only),
counters expire by themselves in Redis instead of growing a table per failed attempt
(an attacker's flood would otherwise become database writes), the client IP comes
from the one TRUSTED_PROXIES-aware helper, and public forms already use the same
limiter. Limits count every address typed, whether or not it has an account, so a
refusal tells nothing about which addresses exist.

Log-in counts failures only: per account and IP pair (a guesser at one place), per
account from anywhere (guessing spread over many IPs) and per IP (one place trying
many accounts). While a limit is reached the password is not even checked, so
guessing on cannot reveal it. A successful log-in clears the pair, a password reset
clears the account.
"""

from __future__ import annotations

import hashlib

from django.http import HttpRequest

from config import proxies, ratelimit

WINDOW = 15 * 60
LOGIN_PAIR_LIMIT = 10  # failed log-ins per account per IP per 15 minutes
LOGIN_ACCOUNT_LIMIT = 50  # failed log-ins per account, any IP, per 15 minutes
LOGIN_IP_LIMIT = 30  # failed log-ins per IP, any account, per 15 minutes
RESET_EMAIL_LIMIT = (3, 60 * 60)  # reset e-mails per address per hour
RESET_IP_LIMIT = (10, 60 * 60)  # reset requests per IP per hour
SIGNUP_EMAIL_LIMIT = (3, 60 * 60)  # sign-up e-mails per address per hour
SIGNUP_IP_LIMIT = (10, 60 * 60)  # sign-up requests per IP per hour

LOGIN_MESSAGE = (
    "Too many failed log-in attempts. For your account's safety, please wait 15 "
    "minutes and try again, or reset your password."
)
RESET_MESSAGE = (
    "Too many reset requests. The e-mails already sent are on their way (look in "
    "the spam folder too); please wait an hour before asking again."
)
SIGNUP_MESSAGE = (
    "Too many sign-up attempts. Please check your inbox for the e-mail already "
    "sent, or wait an hour and try again."
)


def _account(email: str) -> str:
    # Hashed so Redis keys hold no e-mail addresses.
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]


def _ip(request: HttpRequest) -> str:
    return proxies.client_ip(request.META) or "unknown"


def _login_keys(request: HttpRequest, email: str) -> tuple[str, str, str]:
    account, ip = _account(email), _ip(request)
    return (f"login:pair:{account}:{ip}", f"login:acct:{account}", f"login:ip:{ip}")


def login_blocked(request: HttpRequest, email: str) -> bool:
    pair, account, ip = _login_keys(request, email)
    return (
        ratelimit.count(pair) >= LOGIN_PAIR_LIMIT
        or ratelimit.count(account) >= LOGIN_ACCOUNT_LIMIT
        or ratelimit.count(ip) >= LOGIN_IP_LIMIT
    )


def login_failed(request: HttpRequest, email: str) -> None:
    for key in _login_keys(request, email):
        ratelimit.hit(key, window_seconds=WINDOW)


def login_succeeded(request: HttpRequest, email: str) -> None:
    ratelimit.clear(_login_keys(request, email)[0])


def account_unlock(email: str) -> None:
    """After a password reset: the mailbox's owner is back, let them in."""
    ratelimit.clear(f"login:acct:{_account(email)}")


def _allow(key: str, limit: tuple[int, int]) -> bool:
    return ratelimit.allow(key, limit=limit[0], window_seconds=limit[1])


def reset_allowed(request: HttpRequest, email: str) -> bool:
    """Count one reset request; False once the address or the IP had enough."""
    by_ip = _allow(f"reset:ip:{_ip(request)}", RESET_IP_LIMIT)
    by_email = _allow(f"reset:acct:{_account(email)}", RESET_EMAIL_LIMIT)
    return by_ip and by_email


def signup_allowed(request: HttpRequest, email: str) -> bool:
    """Count one sign-up request; False once the address or the IP had enough."""
    by_ip = _allow(f"signup:ip:{_ip(request)}", SIGNUP_IP_LIMIT)
    by_email = _allow(f"signup:acct:{_account(email)}", SIGNUP_EMAIL_LIMIT)
    return by_ip and by_email
