from __future__ import annotations

from django import template

from funnels.money import format_money

register = template.Library()


@register.simple_tag
def money(amount_minor: int | None, currency: str) -> str:
    return format_money(amount_minor, currency)
