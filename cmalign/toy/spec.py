"""The toy world's vocabulary: every colour, shape, size and place it can show.

One spec read by all of the world: :mod:`.draw` paints it, :mod:`.captions`
describes it, :mod:`.world` samples scenes from it and scores which captions
fit which images, and :mod:`.model` builds a tokenizer whose words are exactly
:func:`vocabulary`. Taught in notebooks/03_training_alignment.ipynb.
"""

from __future__ import annotations

IMAGE_SIZE = 40
COLORS = {
    "red": (220, 40, 40),
    "orange": (245, 140, 20),
    "yellow": (240, 230, 40),
    "green": (40, 190, 60),
    "cyan": (40, 220, 230),
    "blue": (50, 80, 245),
    "purple": (165, 60, 225),
    "white": (240, 240, 240),
}
SHAPES = ["circle", "square", "triangle", "star", "cross"]
#: Shapes the shipped model never saw (drawn only with ``extra_shapes``; not in
#: its vocabulary, so their words are spelled letter by letter).
NEW_SHAPES = ("diamond", "ring")
SIZES = {"small": 10, "large": 18}
POSITIONS = ["left", "right", "top", "bottom"]
POSITION_WORDS = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
}
#: Colour-shape pairs that never appear in the "train" split.
HELDOUT_COMBOS = {
    ("red", "star"),
    ("green", "triangle"),
    ("blue", "circle"),
    ("yellow", "cross"),
    ("purple", "square"),
}
SPLITS = ("train", "test", "heldout_combos")
#: Prompt templates for zero-shot classification of colour and of shape.
COLOR_TEMPLATES = ("a {} object", "a {} shape", "a photo of a {} object")
SHAPE_TEMPLATES = ("a {}", "a photo of a {}", "there is a {}")


def vocabulary() -> list[str]:
    """Every word the world's captions (and the lessons' prompts) use."""
    words = set(
        "a an and of the on at to there is photo image picture object shape "
        "left right top bottom above below".split()
    )
    words |= set(COLORS) | set(SHAPES) | set(SIZES)
    return sorted(words)
