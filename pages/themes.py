"""Font pairs and theme presets.

Fonts are variable WOFF2 files (Latin subset) vendored in ``static/fonts/`` from
the Fontsource packages, under the SIL Open Font License (see the ``.LICENSE``
files there): pages load them from their own host, never from a font service.
A pair names a heading font and a body font; the system pairs load nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

SANS = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
SERIF = "Georgia, 'Times New Roman', serif"


@dataclass(frozen=True)
class Font:
    family: str
    file: str  # static path of the WOFF2 file
    fallback: str

    @property
    def stack(self) -> str:
        return f"'{self.family}', {self.fallback}"


FONTS = {
    "inter": Font("Inter", "fonts/inter.woff2", SANS),
    "dm-sans": Font("DM Sans", "fonts/dm-sans.woff2", SANS),
    "fraunces": Font("Fraunces", "fonts/fraunces.woff2", SERIF),
    "playfair": Font("Playfair Display", "fonts/playfair-display.woff2", SERIF),
    "lora": Font("Lora", "fonts/lora.woff2", SERIF),
    "space-grotesk": Font("Space Grotesk", "fonts/space-grotesk.woff2", SANS),
}


@dataclass(frozen=True)
class FontPair:
    label: str
    heading: str  # a FONTS key, or "" for the system stack below
    body: str
    system_heading: str = SANS
    system_body: str = SANS

    def heading_stack(self) -> str:
        return FONTS[self.heading].stack if self.heading else self.system_heading

    def body_stack(self) -> str:
        return FONTS[self.body].stack if self.body else self.system_body

    def fonts(self) -> list[Font]:
        keys = dict.fromkeys(k for k in (self.heading, self.body) if k)
        return [FONTS[k] for k in keys]


PAIRS: dict[str, FontPair] = {
    "inter": FontPair("Inter — clean and modern", "inter", "inter"),
    "fraunces-inter": FontPair(
        "Fraunces + Inter — warm editorial", "fraunces", "inter"
    ),
    "playfair-dm": FontPair(
        "Playfair Display + DM Sans — elegant", "playfair", "dm-sans"
    ),
    "grotesk-inter": FontPair(
        "Space Grotesk + Inter — tech launch", "space-grotesk", "inter"
    ),
    "dm-lora": FontPair("DM Sans + Lora — bookish", "dm-sans", "lora"),
    # No download at all: the fastest pages.
    "system": FontPair("System sans-serif (no download)", "", ""),
    "serif": FontPair("System serif (no download)", "", "", SERIF, SERIF),
    "humanist": FontPair(
        "Friendly humanist (no download)",
        "",
        "",
        "'Trebuchet MS', 'Lucida Grande', 'Segoe UI', sans-serif",
        "'Trebuchet MS', 'Lucida Grande', 'Segoe UI', sans-serif",
    ),
    "mono": FontPair(
        "Monospace (no download)",
        "",
        "",
        "ui-monospace, 'SF Mono', Menlo, Consolas, monospace",
        "ui-monospace, 'SF Mono', Menlo, Consolas, monospace",
    ),
}
FONT_CHOICES = [(key, pair.label) for key, pair in PAIRS.items()]


def pair(key: str) -> FontPair:
    return PAIRS.get(key, PAIRS["system"])


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    primary_color: str
    accent_color: str
    text_color: str
    background_color: str
    font_family: str
    button_style: str
    button_radius: int = 10

    def values(self) -> dict[str, object]:
        return {
            "primary_color": self.primary_color,
            "accent_color": self.accent_color,
            "text_color": self.text_color,
            "background_color": self.background_color,
            "font_family": self.font_family,
            "button_style": self.button_style,
            "button_radius": self.button_radius,
        }

    @property
    def pair(self) -> FontPair:
        return pair(self.font_family)


PRESETS = {
    p.key: p
    for p in (
        Preset(
            "indigo",
            "Indigo",
            "#4f46e5",
            "#f59e0b",
            "#1f2937",
            "#ffffff",
            "inter",
            "rounded",
        ),
        Preset(
            "editorial",
            "Editorial",
            "#9a3412",
            "#0f766e",
            "#1c1917",
            "#fffbf5",
            "fraunces-inter",
            "square",
            0,
        ),
        Preset(
            "boutique",
            "Boutique",
            "#be185d",
            "#a16207",
            "#1f1720",
            "#fffafc",
            "playfair-dm",
            "pill",
        ),
        Preset(
            "launch",
            "Launch",
            "#2563eb",
            "#16a34a",
            "#0f172a",
            "#ffffff",
            "grotesk-inter",
            "rounded",
            12,
        ),
        Preset(
            "forest",
            "Forest",
            "#166534",
            "#ca8a04",
            "#1a2e22",
            "#fbfdf8",
            "dm-lora",
            "rounded",
            8,
        ),
        Preset(
            "sunset",
            "Sunset",
            "#e11d48",
            "#f59e0b",
            "#111827",
            "#ffffff",
            "inter",
            "pill",
        ),
    )
}
