"""Paint a toy scene: coloured shapes on a noisy dark gradient, anti-aliased.

Shapes are drawn at 4x the final size and box-filtered down, so edges are
smooth at 40 px. Colours are jittered per object so that "red" is a range,
not one RGB value. Optional *clutter* (short strokes of muted colours behind
the objects, from a random stream of its own) makes shapes harder to read
without changing anything else about a scene. Used by
:func:`cmalign.toy.world.make_dataset`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from .spec import COLORS, IMAGE_SIZE, SIZES

_SUPER = 4  # supersampling factor


def _draw_shape(
    draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, d: float, rgb: tuple
) -> None:
    r = d / 2
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
    elif shape == "square":
        s = r * 0.85
        draw.rectangle([cx - s, cy - s, cx + s, cy + s], fill=rgb)
    elif shape == "triangle":
        draw.polygon(
            [(cx, cy - r), (cx + r, cy + r * 0.8), (cx - r, cy + r * 0.8)], fill=rgb
        )
    elif shape == "star":
        angles = np.pi / 2 + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, r * 0.42)
        draw.polygon(
            [(cx + q * np.cos(a), cy - q * np.sin(a)) for q, a in zip(radii, angles)],
            fill=rgb,
        )
    elif shape == "diamond":
        draw.polygon(
            [(cx, cy - r), (cx + r * 0.7, cy), (cx, cy + r), (cx - r * 0.7, cy)],
            fill=rgb,
        )
    elif shape == "ring":
        draw.ellipse(
            [cx - r, cy - r, cx + r, cy + r], outline=rgb, width=max(1, round(r * 0.35))
        )
    elif shape == "cross":
        w = r * 0.36
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=rgb)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=rgb)


def _draw_clutter(
    draw: ImageDraw.ImageDraw, n_strokes: int, rng: np.random.Generator
) -> None:
    """``n_strokes`` short line segments (up to ~6 px, 1-2 px wide) of muted colours."""
    size = IMAGE_SIZE * _SUPER
    for _ in range(n_strokes):
        rgb = tuple(int(v) for v in rng.integers(60, 200, size=3))
        x, y = rng.uniform(0, size, 2)
        reach = rng.uniform(2, 6) * _SUPER
        end = (x + rng.uniform(-reach, reach), y + rng.uniform(-reach, reach))
        draw.line([x, y, *end], fill=rgb, width=int(_SUPER * rng.uniform(1, 2)))


def render(
    objects: list[dict],
    rng: np.random.Generator,
    clutter: int = 0,
    clutter_rng: np.random.Generator | None = None,
) -> Image.Image:
    """An RGB IMAGE_SIZE x IMAGE_SIZE image of ``objects`` (dicts with color, shape,
    size and center in pixels), background and jitter drawn from ``rng``.

    ``clutter`` strokes are drawn behind the objects from ``clutter_rng``
    (default ``rng``); with ``clutter=0`` (the default) nothing is drawn and
    no random number is used, so the usual world is unchanged."""
    size = IMAGE_SIZE * _SUPER
    base = rng.integers(0, 70, size=3)
    tilt = rng.normal(0, 12, size=3)
    ramp = np.linspace(-1, 1, IMAGE_SIZE)[:, None, None] * tilt
    background = np.clip(
        base + ramp + rng.normal(0, 10, (IMAGE_SIZE, IMAGE_SIZE, 3)), 0, 255
    )
    canvas = Image.fromarray(background.astype(np.uint8)).resize(
        (size, size), Image.NEAREST
    )
    draw = ImageDraw.Draw(canvas)
    if clutter:
        _draw_clutter(draw, clutter, rng if clutter_rng is None else clutter_rng)
    for obj in objects:
        rgb = tuple(
            int(np.clip(c + rng.integers(-18, 19), 0, 255))
            for c in COLORS[obj["color"]]
        )
        cx, cy = (v * _SUPER for v in obj["center"])
        _draw_shape(draw, obj["shape"], cx, cy, SIZES[obj["size"]] * _SUPER, rgb)
    return canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)
