from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from funnels.money import format_money

register = template.Library()


@register.filter
def pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def chance_text(value: float) -> str:
    """A probability as people read it: never a certain-looking 100 % or 0 %."""
    if value > 0.999:
        return "> 99.9 %"
    if value < 0.001:
        return "< 0.1 %"
    return f"{value * 100:.1f} %"


@register.filter
def chance(value: float | None) -> str:
    return "—" if value is None else chance_text(value)


@register.filter
def num(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


@register.filter
def duration(seconds: float | None) -> str:
    """A time span a person reads at a glance: 45 s, 12 min, 3.5 h, 2.1 days."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


@register.simple_tag
def cents(value: float | None, currency: str = "USD") -> str:
    return "—" if value is None else format_money(round(value), currency)


@register.simple_tag
def amounts(by_currency: dict[str, float] | None, currency: str = "") -> str:
    """Money per currency ("€8.00 · $5.00"), never added across currencies; when
    there is none, zero in ``currency`` (or "—" without one)."""
    if not by_currency:
        return format_money(0, currency) if currency else "—"
    return " · ".join(
        format_money(round(v), cur) for cur, v in sorted(by_currency.items())
    )


@register.simple_tag
def ratios(by_currency: dict[str, float] | None) -> str:
    """A ratio per currency (ROAS), as "2.7 times", or one per currency for several."""
    if not by_currency:
        return "—"
    if len(by_currency) == 1:
        return f"{next(iter(by_currency.values())):.1f}×"
    return " · ".join(f"{cur} {v:.1f}×" for cur, v in sorted(by_currency.items()))


@register.simple_tag
def delta(current: float | None, previous: float | None) -> str:
    """A small ▲/▼ badge comparing with the previous period."""
    if current is None or previous is None:
        return ""
    if previous == 0:
        return mark_safe('<span class="delta up">new</span>') if current else ""
    change = (current - previous) / previous
    if abs(change) < 0.0005:
        return mark_safe('<span class="delta flat">±0 %</span>')
    cls, arrow = ("up", "▲") if change > 0 else ("down", "▼")
    return format_html(
        '<span class="delta {}">{} {} %</span>', cls, arrow, f"{abs(change) * 100:.1f}"
    )
