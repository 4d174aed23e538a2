"""Run axe-core (vendored in tests/e2e/vendor, MPL-2.0) in the page under test."""

from __future__ import annotations

from functools import cache
from pathlib import Path

VENDOR = Path(__file__).parent / "vendor" / "axe.min.js"
SERIOUS = ("serious", "critical")


@cache
def _source() -> str:
    return VENDOR.read_text()


def violations(page, impacts: tuple[str, ...] = SERIOUS) -> list[str]:
    """axe's violations of the given impacts, one readable line each.

    The script is evaluated through the DevTools protocol, so the admin's CSP
    (script-src 'self') does not stop it."""
    if not page.evaluate("() => !!window.axe"):
        page.evaluate(_source())
    found = page.evaluate(
        """async () => {
            const r = await axe.run(document, {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))}));
        }"""
    )
    return [
        f"{v['impact']} {v['id']}: {v['help']} — {', '.join(v['nodes'])}"
        for v in found
        if v["impact"] in impacts
    ]
