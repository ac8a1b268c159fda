"""A procedural image-caption world: coloured shapes on noisy dark backgrounds.

Every image holds one or two objects with a colour, a shape, a size and a
place; every caption is generated from the attributes of its image, with
paraphrases and optional attributes ("a large red circle on the left",
"a blue square above a green star", "a yellow object"). Because a caption
like "a red circle" fits many images, retrieval in this world is scored with
:meth:`ToyDataset.relevance`, never by index alone.

Some colour-shape pairs (``HELDOUT_COMBOS``) never appear in the ``"train"``
split; the ``"heldout_combos"`` split is made of them, to measure
compositional generalisation. The vocabulary lives in :mod:`.spec`, the
painting in :mod:`.draw`, the wording in :mod:`.captions`.
Taught in notebooks/03_training_alignment.ipynb.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .captions import caption
from .draw import render
from .spec import (
    COLOR_TEMPLATES,
    COLORS,
    HELDOUT_COMBOS,
    IMAGE_SIZE,
    NEW_SHAPES,
    POSITIONS,
    SHAPE_TEMPLATES,
    SHAPES,
    SIZES,
    SPLITS,
)

_COLOR_NAMES = list(COLORS)


@dataclass
class ToyDataset:
    """Images with their ground truth and their captions (a :class:`~cmalign.pairs.PairDataset`).

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
        """The number of captions (pairs), as for every :class:`~cmalign.pairs.PairDataset`."""
        return len(self.captions)

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

    def zero_shot_task(
        self, key: str = "color", names: list[str] | None = None
    ) -> tuple[list[Image.Image], list[int], list[str], tuple[str, ...]]:
        """Classify the single-object images by ``key`` ("color" or "shape").

        ``names`` overrides the class list (e.g. ``SHAPES + NEW_SHAPES`` for a
        world made with ``extra_shapes``).

        Returns
        -------
        images, labels (class index per image), class names, prompt templates
        """
        if key not in ("color", "shape"):
            raise ValueError(f"key must be 'color' or 'shape', got {key!r}")
        names = list(names or (_COLOR_NAMES if key == "color" else SHAPES))
        single = [i for i, a in enumerate(self.attributes) if len(a["objects"]) == 1]
        labels = [names.index(self.attributes[i]["objects"][0][key]) for i in single]
        templates = COLOR_TEMPLATES if key == "color" else SHAPE_TEMPLATES
        return [self.images[i] for i in single], labels, list(names), templates


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
        ("shape", SHAPES + list(NEW_SHAPES)),
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


def _sample_object(
    rng: np.random.Generator, split: str, force_heldout: bool, shapes: list[str]
) -> dict:
    while True:
        color = _COLOR_NAMES[rng.integers(len(_COLOR_NAMES))]
        shape = shapes[rng.integers(len(shapes))]
        heldout = (color, shape) in HELDOUT_COMBOS
        if force_heldout == heldout or (
            split == "heldout_combos" and not force_heldout
        ):
            size = list(SIZES)[rng.integers(len(SIZES))]
            return {"color": color, "shape": shape, "size": size}


def _place(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _sample_image(
    rng: np.random.Generator, split: str, shapes: list[str], pairs_only: bool
) -> dict:
    n_objects = 1 if rng.random() < 0.6 and not pairs_only else 2
    heldout = split == "heldout_combos"
    objects = [_sample_object(rng, split, heldout, shapes)]
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
    objects.append(_sample_object(rng, split, False, shapes))
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


def make_dataset(
    n: int,
    *,
    seed: int = 0,
    split: str = "train",
    captions_per_image: int = 1,
    extra_shapes: tuple[str, ...] = (),
    pairs_only: bool = False,
    clutter: int = 0,
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
    extra_shapes : tuple of str
        Shapes from ``NEW_SHAPES`` to draw too, a world the shipped model has
        never seen (notebooks/07_adapting_clip.ipynb). Empty: the usual world.
    pairs_only : bool
        Every image has two objects (for hard negatives,
        :func:`cmalign.toy.negatives.hard_pairs`).
    clutter : int
        Short strokes of muted colours drawn behind the objects of every image
        (0, the default: none). They come from a random stream of their own,
        so the same seed gives the same scenes, captions and colours with or
        without clutter: only the pictures get harder to read
        (notebooks/01_clip_embeddings.ipynb uses 12 for a zero-shot shape task
        where prompts matter).

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
    unknown = set(extra_shapes) - set(NEW_SHAPES)
    if unknown:
        raise ValueError(f"extra_shapes must be drawn from {NEW_SHAPES}, got {unknown}")
    if clutter < 0:
        raise ValueError(f"clutter must be >= 0 strokes per image, got {clutter}")
    shapes = SHAPES + list(extra_shapes)
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    clutter_rng = np.random.default_rng([seed, SPLITS.index(split), 1])
    images, captions, attributes, specs = [], [], [], []
    for _ in range(n):
        attrs = _sample_image(rng, split, shapes, pairs_only)
        for _ in range(captions_per_image):
            text, spec = caption(attrs, rng)
            captions.append(text)
            specs.append(spec)
        images.append(
            render(attrs["objects"], rng, clutter=clutter, clutter_rng=clutter_rng)
        )
        attributes.append(attrs)
    return ToyDataset(images, captions, attributes, specs, captions_per_image)
