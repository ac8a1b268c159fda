"""A procedural image-caption world: coloured shapes on noisy dark backgrounds.

Every image holds one or two objects with a colour, a shape, a size and a
place; every caption is generated from the attributes of its image, with
paraphrases and optional attributes ("a large red circle on the left",
"a blue square above a green star", "a yellow object"). Because a caption
like "a red circle" fits many images, retrieval in this world is scored with
:meth:`ToyDataset.relevance`, never by index alone.

Some colour-shape pairs (``HELDOUT_COMBOS``) never appear in the ``"train"``
split; the ``"heldout_combos"`` split is made of them, to measure
compositional generalisation. Taught in notebooks/03_training_alignment.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image, ImageDraw

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
SIZES = {"small": 10, "large": 18}
POSITIONS = ["left", "right", "top", "bottom"]
POSITION_WORDS = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
}
HELDOUT_COMBOS = {
    ("red", "star"),
    ("green", "triangle"),
    ("blue", "circle"),
    ("yellow", "cross"),
    ("purple", "square"),
}
SPLITS = ("train", "test", "heldout_combos")
_COLOR_NAMES, _SUPER = list(COLORS), 4
_PREFIXES = ["", "a photo of ", "an image of ", "there is ", "a picture of "]


@dataclass
class ToyDataset:
    """Images with their ground truth and one caption per image.

    Attributes
    ----------
    images : list of PIL.Image.Image, RGB, IMAGE_SIZE x IMAGE_SIZE
    captions : list of str
        ``captions_per_image`` captions per image, grouped: caption t describes
        image ``t // captions_per_image`` (see ``text_to_image``).
    attributes : list of dict
        Per image: ``objects`` (list of dicts with color, shape, size, position,
        center) and ``layout`` (None, "horizontal" or "vertical").
    specs : list of dict
        Per caption: what it asserts, with None for an attribute left out.
    """

    images: list[Image.Image]
    captions: list[str]
    attributes: list[dict]
    specs: list[dict] = field(repr=False)

    captions_per_image: int = 1

    @property
    def text_to_image(self) -> list[int]:
        """Index of each caption's image (captions are grouped by image)."""
        return [i // self.captions_per_image for i in range(len(self.captions))]

    def __len__(self) -> int:
        return len(self.images)

    def first_captions(self) -> list[str]:
        """The first caption of each image, aligned with ``images``."""
        return self.captions[:: self.captions_per_image]

    def relevance(self) -> torch.Tensor:
        """Which images satisfy each caption: bool tensor (n_texts, n_images)."""
        return relevance_matrix(self.specs, self.attributes)

    def relevance_between(
        self, text_idx: list[int], image_idx: list[int]
    ) -> torch.Tensor:
        """Relevance of a subset: bool tensor (len(text_idx), len(image_idx))."""
        return relevance_matrix(
            [self.specs[i] for i in text_idx], [self.attributes[i] for i in image_idx]
        )


def _object_code(values: list, vocab: list) -> np.ndarray:
    return np.array([vocab.index(v) if v is not None else -1 for v in values])


def _encode(items: list[dict], key: str, vocab: list, slot: int) -> np.ndarray:
    return _object_code(
        [
            item["objects"][slot][key] if len(item["objects"]) > slot else None
            for item in items
        ],
        vocab,
    )


def relevance_matrix(specs: list[dict], attributes: list[dict]) -> torch.Tensor:
    """Bool (n_specs, n_images): a caption fits an image when the image has exactly
    as many objects, each stated attribute matches, and the stated position or
    relation holds (objects may match in either order when no relation is stated).
    """
    n_img = np.array([len(a["objects"]) for a in attributes])
    n_cap = np.array([len(s["objects"]) for s in specs])
    keys = [
        ("color", _COLOR_NAMES),
        ("shape", SHAPES),
        ("size", list(SIZES)),
        ("position", POSITIONS),
    ]

    def slot_match(cap_slot: int, img_slot: int) -> np.ndarray:
        ok = np.ones((len(specs), len(attributes)), dtype=bool)
        for key, vocab in keys:
            c = _encode(specs, key, vocab, cap_slot)[:, None]
            i = _encode(attributes, key, vocab, img_slot)[None, :]
            ok &= (c == -1) | (c == i)
        return ok

    layout_vocab = [None, "horizontal", "vertical"]
    rel = np.array([layout_vocab.index(s["relation"]) for s in specs])[:, None]
    layout = np.array([layout_vocab.index(a["layout"]) for a in attributes])[None, :]
    same_count = n_cap[:, None] == n_img[None, :]
    one = same_count & (n_cap[:, None] == 1) & slot_match(0, 0)
    straight = slot_match(0, 0) & slot_match(1, 1) & ((rel == 0) | (rel == layout))
    swapped = slot_match(0, 1) & slot_match(1, 0) & (rel == 0)
    two = same_count & (n_cap[:, None] == 2) & (straight | swapped)
    return torch.from_numpy(one | two)


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
    elif shape == "cross":
        w = r * 0.36
        draw.rectangle([cx - r, cy - w, cx + r, cy + w], fill=rgb)
        draw.rectangle([cx - w, cy - r, cx + w, cy + r], fill=rgb)


def _render(objects: list[dict], rng: np.random.Generator) -> Image.Image:
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
    for obj in objects:
        rgb = tuple(
            int(np.clip(c + rng.integers(-18, 19), 0, 255))
            for c in COLORS[obj["color"]]
        )
        cx, cy = (v * _SUPER for v in obj["center"])
        _draw_shape(draw, obj["shape"], cx, cy, SIZES[obj["size"]] * _SUPER, rgb)
    return canvas.resize((IMAGE_SIZE, IMAGE_SIZE), Image.BOX)


def _sample_object(rng: np.random.Generator, split: str, force_heldout: bool) -> dict:
    while True:
        color = _COLOR_NAMES[rng.integers(len(_COLOR_NAMES))]
        shape = SHAPES[rng.integers(len(SHAPES))]
        heldout = (color, shape) in HELDOUT_COMBOS
        if force_heldout == heldout or (
            split == "heldout_combos" and not force_heldout
        ):
            size = list(SIZES)[rng.integers(len(SIZES))]
            return {"color": color, "shape": shape, "size": size}


def _place(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _sample_image(rng: np.random.Generator, split: str) -> dict:
    n_objects = 1 if rng.random() < 0.6 else 2
    heldout = split == "heldout_combos"
    objects = [_sample_object(rng, split, heldout)]
    m, lo, hi = IMAGE_SIZE, 0.27 * IMAGE_SIZE, 0.73 * IMAGE_SIZE
    if n_objects == 1:
        pos = POSITIONS[rng.integers(4)]
        near, far, mid = (
            _place(rng, 10, 13),
            _place(rng, m - 13, m - 10),
            _place(rng, lo, hi),
        )
        objects[0]["position"] = pos
        objects[0]["center"] = {
            "left": (near, mid),
            "right": (far, mid),
            "top": (mid, near),
            "bottom": (mid, far),
        }[pos]
        return {"objects": objects, "layout": None}
    objects.append(_sample_object(rng, split, False))
    layout = "horizontal" if rng.random() < 0.5 else "vertical"
    first = (_place(rng, 9, 12), _place(rng, lo, hi))
    second = (_place(rng, m - 12, m - 9), _place(rng, lo, hi))
    if layout == "vertical":
        first, second = first[::-1], second[::-1]
    if heldout and rng.random() < 0.5:  # the held-out object is not always first
        objects.reverse()
    for obj, center in zip(objects, (first, second)):
        obj["position"], obj["center"] = None, center
    return {"objects": objects, "layout": layout}


def _noun_phrase(
    obj: dict, rng: np.random.Generator, keep_all: bool
) -> tuple[str, dict]:
    keep = {
        k: keep_all or rng.random() < p
        for k, p in (("size", 0.5), ("color", 0.8), ("shape", 0.8))
    }
    if not (keep["color"] or keep["shape"]):
        keep[("color", "shape")[rng.integers(2)]] = True
    words = [obj[k] for k in ("size", "color") if keep[k]]
    noun = obj["shape"] if keep["shape"] else ("object", "shape")[rng.integers(2)]
    spec = {k: (obj[k] if keep[k] else None) for k in ("color", "shape", "size")}
    spec["position"] = None
    words.append(noun)
    return " ".join([article(words[0]), *words]), spec


def article(word: str) -> str:
    """'an' before a vowel sound ("an orange circle"), else 'a'."""
    return "an" if word[0] in "aeiou" else "a"


def _caption(attrs: dict, rng: np.random.Generator) -> tuple[str, dict]:
    prefix = _PREFIXES[rng.integers(len(_PREFIXES))]
    objects = attrs["objects"]
    if len(objects) == 1:
        phrase, spec = _noun_phrase(objects[0], rng, keep_all=rng.random() < 0.3)
        if rng.random() < 0.6:
            phrase += " " + POSITION_WORDS[objects[0]["position"]]
            spec["position"] = objects[0]["position"]
        return (prefix + phrase).strip(), {"objects": [spec], "relation": None}
    (p0, s0), (p1, s1) = (_noun_phrase(o, rng, rng.random() < 0.3) for o in objects)
    style = rng.integers(3)
    if style == 0:  # no relation, either order
        text, specs = (
            (f"{p0} and {p1}", [s0, s1])
            if rng.random() < 0.5
            else (f"{p1} and {p0}", [s1, s0])
        )
        return prefix + text, {"objects": specs, "relation": None}
    horizontal = attrs["layout"] == "horizontal"
    if style == 1:
        text = f"{p0} {'to the left of' if horizontal else 'above'} {p1}"
    else:
        text = f"{p1} {'to the right of' if horizontal else 'below'} {p0}"
    return prefix + text, {"objects": [s0, s1], "relation": attrs["layout"]}


def make_dataset(
    n: int, seed: int = 0, split: str = "train", captions_per_image: int = 1
) -> ToyDataset:
    """Generate ``n`` image-caption pairs, deterministically for a given seed.

    Parameters
    ----------
    n : int
        Number of pairs.
    seed : int
        Same seed and split, same data.
    split : {"train", "test", "heldout_combos"}
        "train" and "test" never contain a pair of ``HELDOUT_COMBOS``;
        "heldout_combos" has one in every image. Use different seeds for
        "train" and "test".
    captions_per_image : int
        Independent paraphrases generated per image.

    Returns
    -------
    ToyDataset
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if n < 1 or captions_per_image < 1:
        raise ValueError(
            f"n and captions_per_image must be >= 1, got {n}, {captions_per_image}"
        )
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    images, captions, attributes, specs = [], [], [], []
    for _ in range(n):
        attrs = _sample_image(rng, split)
        for _ in range(captions_per_image):
            text, spec = _caption(attrs, rng)
            captions.append(text)
            specs.append(spec)
        images.append(_render(attrs["objects"], rng))
        attributes.append(attrs)
    return ToyDataset(images, captions, attributes, specs, captions_per_image)


def vocabulary() -> list[str]:
    """Every word the world's captions (and the lessons' prompts) use."""
    words = set(
        "a an and of the on at to there is photo image picture object shape "
        "left right top bottom above below".split()
    )
    words |= set(COLORS) | set(SHAPES) | set(SIZES)
    return sorted(words)
