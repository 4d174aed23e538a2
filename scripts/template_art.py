"""Draw the funnel templates' images with Pillow (run from the repo root).

    .venv/bin/python scripts/template_art.py

Writes static/img/templates/<name>.webp: book covers, device mock-ups, a
calendar and a video still, drawn from shapes and the vendored OFL fonts
(static/fonts), so every template image is made for this project and free of
third-party licences. The outputs are committed; re-run after changing them.
"""

from __future__ import annotations

import contextlib
import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter, ImageFont

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "static" / "img" / "templates"
FONTS = ROOT / "static" / "fonts"
W, H = 1200, 900


def font(name: str, size: int, weight: int = 700) -> ImageFont.FreeTypeFont:
    f = ImageFont.truetype(str(FONTS / f"{name}.woff2"), size)
    with contextlib.suppress(OSError, ValueError):
        f.set_variation_by_axes([weight])
    return f


def rgb(hex_: str) -> tuple[int, int, int]:
    hex_ = hex_.lstrip("#")
    return tuple(int(hex_[i : i + 2], 16) for i in (0, 2, 4))  # type: ignore[return-value]


def mix(a: str, b: str, t: float) -> tuple[int, int, int]:
    ca, cb = rgb(a), rgb(b)
    return tuple(round(x + (y - x) * t) for x, y in zip(ca, cb, strict=True))  # type: ignore[return-value]


def backdrop(primary: str, accent: str) -> Image.Image:
    img = Image.new("RGB", (W, H), mix(primary, "#ffffff", 0.9))
    d = ImageDraw.Draw(img)
    for y in range(H):
        d.line([(0, y), (W, y)], fill=mix(primary, "#ffffff", 0.93 - 0.1 * y / H))
    glow = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    g = ImageDraw.Draw(glow)
    g.ellipse((-160, -200, 560, 520), fill=(*rgb(accent), 70))
    g.ellipse((760, 480, 1380, 1100), fill=(*rgb(primary), 60))
    glow = glow.filter(ImageFilter.GaussianBlur(60))
    img.paste(glow, (0, 0), glow)
    dots = ImageDraw.Draw(img)
    for i in range(9):
        for j in range(5):
            dots.ellipse(
                (980 + i * 22, 70 + j * 22, 986 + i * 22, 76 + j * 22),
                fill=mix(primary, "#ffffff", 0.55),
            )
    return img


def shadow(img: Image.Image, box: tuple[int, int, int, int], radius: int = 24) -> None:
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    ImageDraw.Draw(layer).rounded_rectangle(
        (box[0] + 18, box[1] + 30, box[2] + 18, box[3] + 30),
        radius,
        fill=(15, 23, 42, 90),
    )
    layer = layer.filter(ImageFilter.GaussianBlur(26))
    img.paste(layer, (0, 0), layer)


def wrap(d: ImageDraw.ImageDraw, text: str, f, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if d.textlength(trial, font=f) <= width:
            line = trial
        else:
            lines.append(line)
            line = word
    lines.append(line)
    return lines


def book(spec: dict) -> Image.Image:
    img = backdrop(spec["primary"], spec["accent"])
    x0, y0, x1, y1 = 390, 110, 810, 790
    shadow(img, (x0, y0, x1, y1), 12)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((x0, y0, x1, y1), 12, fill=rgb(spec["primary"]))
    d.rectangle((x0, y0, x0 + 26, y1), fill=mix(spec["primary"], "#000000", 0.25))
    d.rectangle((x0 + 26, y0, x0 + 30, y1), fill=mix(spec["primary"], "#ffffff", 0.25))
    d.ellipse(
        (x1 - 220, y0 + 40, x1 + 60, y0 + 320),
        fill=mix(spec["primary"], spec["accent"], 0.45),
    )
    d.ellipse((x1 - 150, y0 + 110, x1 - 10, y0 + 250), fill=rgb(spec["accent"]))
    small = font(spec.get("body", "inter"), 24, 700)
    d.text(
        (x0 + 62, y0 + 60),
        spec["kicker"].upper(),
        font=small,
        fill=mix(spec["accent"], "#ffffff", 0.3),
    )
    big = font(spec.get("heading", "inter"), 58, 800)
    y = y0 + 360
    for line in wrap(d, spec["title"], big, x1 - x0 - 110):
        d.text((x0 + 62, y), line, font=big, fill="#ffffff")
        y += 66
    sub = font(spec.get("body", "inter"), 26, 500)
    for line in wrap(d, spec["subtitle"], sub, x1 - x0 - 110):
        d.text(
            (x0 + 62, y + 18), line, font=sub, fill=mix(spec["primary"], "#ffffff", 0.8)
        )
        y += 34
    d.line((x0 + 62, y1 - 70, x0 + 180, y1 - 70), fill=rgb(spec["accent"]), width=5)
    if spec.get("badge"):
        badge(img, spec["badge"], spec["accent"], (860, 150))
    return img


def badge(img: Image.Image, text: str, color: str, at: tuple[int, int]) -> None:
    d = ImageDraw.Draw(img)
    cx, cy, r = at[0] + 110, at[1] + 110, 110
    points = []
    for i in range(48):
        rr = r if i % 2 == 0 else r - 12
        a = math.pi * 2 * i / 48
        points.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    d.polygon(points, fill=rgb(color))
    f = font("inter", 30, 800)
    lines = text.split("\n")
    for i, line in enumerate(lines):
        tw = d.textlength(line, font=f)
        d.text(
            (cx - tw / 2, cy - 20 * len(lines) + i * 40), line, font=f, fill="#111827"
        )


def device(spec: dict) -> Image.Image:
    """A tablet showing a plan, a course or a members' area."""
    img = backdrop(spec["primary"], spec["accent"])
    x0, y0, x1, y1 = 170, 120, 1030, 780
    shadow(img, (x0, y0, x1, y1), 36)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((x0, y0, x1, y1), 36, fill="#0f172a")
    sx0, sy0, sx1, sy1 = x0 + 26, y0 + 26, x1 - 26, y1 - 26
    d.rounded_rectangle((sx0, sy0, sx1, sy1), 14, fill="#ffffff")
    d.rectangle((sx0, sy0, sx1, sy0 + 70), fill=rgb(spec["primary"]))
    d.text(
        (sx0 + 30, sy0 + 20),
        spec["title"],
        font=font(spec.get("heading", "inter"), 30, 800),
        fill="#ffffff",
    )
    cols, rows = spec.get("grid", (3, 2))
    gw = (sx1 - sx0 - 60 - (cols - 1) * 20) / cols
    gh = (sy1 - sy0 - 130 - (rows - 1) * 20) / rows
    labels = spec["cards"]
    f = font(spec.get("body", "inter"), 22, 700)
    fs = font(spec.get("body", "inter"), 17, 500)
    for i in range(cols * rows):
        cx = sx0 + 30 + (i % cols) * (gw + 20)
        cy = sy0 + 100 + (i // cols) * (gh + 20)
        d.rounded_rectangle(
            (cx, cy, cx + gw, cy + gh), 12, fill=mix(spec["primary"], "#ffffff", 0.92)
        )
        d.rounded_rectangle(
            (cx, cy, cx + gw, cy + gh * 0.55),
            12,
            fill=mix(spec["primary"], spec["accent"], (i % 3) / 3),
        )
        d.ellipse(
            (
                cx + gw / 2 - 26,
                cy + gh * 0.27 - 26,
                cx + gw / 2 + 26,
                cy + gh * 0.27 + 26,
            ),
            fill=(255, 255, 255),
        )
        d.polygon(
            [
                (cx + gw / 2 - 8, cy + gh * 0.27 - 14),
                (cx + gw / 2 - 8, cy + gh * 0.27 + 14),
                (cx + gw / 2 + 14, cy + gh * 0.27),
            ],
            fill=rgb(spec["primary"]),
        )
        title, sub = labels[i % len(labels)]
        d.text((cx + 16, cy + gh * 0.62), title, font=f, fill="#0f172a")
        d.text((cx + 16, cy + gh * 0.62 + 32), sub, font=fs, fill="#475569")
        d.rounded_rectangle(
            (cx + 16, cy + gh - 24, cx + gw - 16, cy + gh - 16), 4, fill="#e2e8f0"
        )
        d.rounded_rectangle(
            (
                cx + 16,
                cy + gh - 24,
                cx + 16 + (gw - 32) * (0.25 + 0.2 * (i % 4)),
                cy + gh - 16,
            ),
            4,
            fill=rgb(spec["accent"]),
        )
    return img


def video(spec: dict) -> Image.Image:
    """A webinar still: slide on the left, presenter tile, play button."""
    img = Image.new("RGB", (W, 675), "#0f172a")
    d = ImageDraw.Draw(img)
    for y in range(675):
        d.line([(0, y), (W, y)], fill=mix("#0f172a", spec["primary"], 0.55 * y / 675))
    d.rounded_rectangle((60, 60, 760, 615), 18, fill="#ffffff")
    d.text(
        (100, 100),
        spec["kicker"].upper(),
        font=font("inter", 22, 700),
        fill=rgb(spec["primary"]),
    )
    y = 150
    for line in wrap(
        d, spec["title"], font(spec.get("heading", "inter"), 52, 800), 600
    ):
        d.text(
            (100, y),
            line,
            font=font(spec.get("heading", "inter"), 52, 800),
            fill="#0f172a",
        )
        y += 62
    for i, bar in enumerate((0.9, 0.7, 0.82)):
        d.rounded_rectangle(
            (100, y + 40 + i * 42, 100 + 560 * bar, y + 62 + i * 42),
            8,
            fill=mix(spec["primary"], "#ffffff", 0.8),
        )
    d.rounded_rectangle(
        (800, 60, 1140, 340), 18, fill=mix(spec["primary"], "#0f172a", 0.4)
    )
    d.ellipse((920, 110, 1020, 210), fill=mix(spec["accent"], "#ffffff", 0.35))
    d.pieslice(
        (870, 200, 1070, 400), 180, 360, fill=mix(spec["accent"], "#ffffff", 0.2)
    )
    d.rounded_rectangle(
        (800, 370, 1140, 615), 18, fill=mix(spec["primary"], "#0f172a", 0.6)
    )
    d.text(
        (830, 400), "LIVE REPLAY", font=font("inter", 24, 800), fill=rgb(spec["accent"])
    )
    d.text((830, 440), spec["subtitle"], font=font("inter", 22, 500), fill="#e2e8f0")
    d.ellipse((530, 260, 670, 400), fill=rgb(spec["primary"]))
    d.polygon([(578, 300), (578, 360), (632, 330)], fill="#ffffff")
    return img


def calendar(spec: dict) -> Image.Image:
    img = backdrop(spec["primary"], spec["accent"])
    x0, y0, x1, y1 = 200, 120, 1000, 780
    shadow(img, (x0, y0, x1, y1), 24)
    d = ImageDraw.Draw(img)
    d.rounded_rectangle((x0, y0, x1, y1), 24, fill="#ffffff")
    d.rounded_rectangle((x0, y0, x1, y0 + 100), 24, fill=rgb(spec["primary"]))
    d.rectangle((x0, y0 + 70, x1, y0 + 100), fill=rgb(spec["primary"]))
    d.text(
        (x0 + 40, y0 + 30),
        spec["title"],
        font=font(spec.get("heading", "inter"), 36, 800),
        fill="#ffffff",
    )
    days = ["MON", "TUE", "WED", "THU", "FRI"]
    f = font("inter", 20, 700)
    cw = (x1 - x0 - 80) / 5
    for i, day in enumerate(days):
        d.text((x0 + 40 + i * cw + 10, y0 + 125), day, font=f, fill="#64748b")
    slot = font("inter", 20, 600)
    times = ["9:00", "10:30", "13:00", "15:30", "17:00"]
    for i in range(5):
        for j, t in enumerate(times):
            bx = x0 + 40 + i * cw
            by = y0 + 170 + j * 110
            booked = (i * 3 + j) % 4 == 0
            chosen = (i, j) == (2, 2)
            fill = (
                rgb(spec["accent"])
                if chosen
                else ("#e2e8f0" if booked else mix(spec["primary"], "#ffffff", 0.88))
            )
            d.rounded_rectangle((bx, by, bx + cw - 14, by + 86), 12, fill=fill)
            d.text(
                (bx + 16, by + 28),
                t,
                font=slot,
                fill="#0f172a" if not booked else "#94a3b8",
            )
    d.text(
        (x0 + 40, y1 - 60),
        spec["subtitle"],
        font=font("inter", 22, 600),
        fill="#334155",
    )
    return img


SPECS = {
    "lead-magnet-cover": (
        book,
        {
            "primary": "#4f46e5",
            "accent": "#f59e0b",
            "kicker": "Free guide",
            "title": "Your First 10 Clients",
            "subtitle": "A 7-day plan for new freelancers",
            "heading": "inter",
        },
    ),
    "tripwire-cover": (
        book,
        {
            "primary": "#e11d48",
            "accent": "#f59e0b",
            "kicker": "Cheat sheet",
            "title": "5-Minute Meal Prep",
            "subtitle": "Five dinners, one Sunday hour, under $60",
        },
    ),
    "tripwire-plan": (
        device,
        {
            "primary": "#e11d48",
            "accent": "#f59e0b",
            "title": "30-Day Meal Plan",
            "cards": [
                ("Week 1", "Sheet-pan week"),
                ("Week 2", "One-pot week"),
                ("Week 3", "Freezer week"),
                ("Week 4", "Family favourites"),
                ("Shopping", "Lists by aisle"),
                ("Swaps", "Picky eaters"),
            ],
        },
    ),
    "launch-course": (
        device,
        {
            "primary": "#0f766e",
            "accent": "#f97316",
            "title": "Course Launch Lab",
            "heading": "space-grotesk",
            "cards": [
                ("Module 1", "Pick the idea"),
                ("Module 2", "Pre-sell it"),
                ("Module 3", "Build the course"),
                ("Module 4", "Launch week"),
                ("Templates", "Emails & pages"),
                ("Live Q&A", "Every Thursday"),
            ],
        },
    ),
    "webinar-slide": (
        video,
        {
            "primary": "#2563eb",
            "accent": "#facc15",
            "kicker": "Free live workshop",
            "title": "Land 3 retainer clients in 60 days",
            "subtitle": "Agency Accelerator",
        },
    ),
    "replay-still": (
        video,
        {
            "primary": "#7c3aed",
            "accent": "#f472b6",
            "kicker": "Workshop replay",
            "title": "The 45-minute pricing reset",
            "subtitle": "Available for 72 hours",
            "heading": "fraunces",
        },
    ),
    "application-calendar": (
        calendar,
        {
            "primary": "#166534",
            "accent": "#ca8a04",
            "title": "Book your strategy call",
            "subtitle": "45 minutes · video call · no pitch on the first call",
            "heading": "dm-sans",
        },
    ),
    "shipping-book": (
        book,
        {
            "primary": "#9a3412",
            "accent": "#fbbf24",
            "kicker": "Hardcover",
            "title": "The Calm Kitchen Garden",
            "subtitle": "Grow half your vegetables in 10 m²",
            "heading": "fraunces",
            "badge": "FREE\n+ shipping",
        },
    ),
    "membership-dashboard": (
        device,
        {
            "primary": "#be185d",
            "accent": "#a16207",
            "title": "Studio Circle",
            "heading": "playfair-display",
            "cards": [
                ("Live classes", "Tue & Thu 7 pm"),
                ("Library", "120 lessons"),
                ("Challenges", "Monthly"),
                ("Community", "Ask anything"),
                ("Workbooks", "Print & go"),
                ("Guests", "Monthly expert"),
            ],
        },
    ),
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    for name, (draw, spec) in SPECS.items():
        if only and name not in only:
            continue
        image = draw(spec)
        path = OUT / f"{name}.webp"
        image.save(path, "WEBP", quality=82, method=6)
        print(
            f"{path.relative_to(ROOT)} {image.size[0]}x{image.size[1]}",
            f"{path.stat().st_size} bytes",
        )


if __name__ == "__main__":
    main()
