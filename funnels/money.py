"""Formatting integer minor units as money, for templates and e-mails."""

from __future__ import annotations

ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "HUF"}
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}
CURRENCIES = ["USD", "EUR", "GBP", "CAD", "AUD", "CHF", "SEK", "NOK", "DKK", "JPY"]


def minor_per_unit(currency: str) -> int:
    return 1 if currency.upper() in ZERO_DECIMAL else 100


def format_money(amount_minor: int | None, currency: str) -> str:
    if amount_minor is None:
        return "—"
    currency = (currency or "USD").upper()
    per = minor_per_unit(currency)
    sign = "-" if amount_minor < 0 else ""
    value = abs(amount_minor)
    number = f"{value // per:,}" if per == 1 else f"{value // per:,}.{value % per:02d}"
    symbol = SYMBOLS.get(currency)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"


def parse_money(text: str, currency: str) -> int:
    """'27', '27.5', '1,027.00' → minor units; raises ValueError on anything else."""
    cleaned = (text or "").strip().replace(",", "")
    if not cleaned or cleaned.startswith("-"):
        raise ValueError("Enter a price like 27 or 27.00.")
    whole, _, frac = cleaned.partition(".")
    per = minor_per_unit(currency)
    digits = 0 if per == 1 else 2
    if not whole.isdigit() or (frac and not frac.isdigit()) or len(frac) > digits:
        raise ValueError(
            "Enter a price like 27 or 27.00." if digits else "Enter a whole amount."
        )
    return int(whole) * per + (int(frac.ljust(digits, "0")) if digits else 0)
