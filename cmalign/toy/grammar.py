"""Everything the world can say, and how right a caption is about an image.

The world's captions (:mod:`.captions`) leave attributes out and vary their
wording; the *fully stated* ones are a small, finite grammar: one object with
its size, colour, shape and position (2 x 8 x 5 x 4 = 320 captions), or two
objects with their sizes, colours and shapes and the relation between them
(80 x 80 x 2 = 12,800), each worded one way (:func:`wording`). Because the
grammar is finite, captioning can be an exhaustive search over it
(:mod:`cmalign.captioning`), and every caption can be scored attribute by
attribute against the image's exact ground truth (:func:`caption_scores`).
Taught in notebooks/08_captioning.ipynb.
"""

from __future__ import annotations

import itertools

import numpy as np

from .captions import describe
from .spec import COLORS, POSITIONS, SHAPES, SIZES
from .world import relevance_matrix

#: Per-attribute judgements of :func:`caption_scores`, in print order.
ATTRIBUTES = ("count", "color", "shape", "size", "position", "relation")


def _object(size, color, shape, position=None) -> dict:
    return {"color": color, "shape": shape, "size": size, "position": position}


def full_specs(n_objects: int) -> list[dict]:
    """Every fully stated caption spec of ``n_objects`` (1 or 2) objects.

    Returns
    -------
    list of spec dicts (as in ``ToyDataset.specs``): 320 for one object (size,
    colour, shape, position), 12,800 for two (each object's size, colour and
    shape; the first object left of / above the second).
    """
    looks = list(itertools.product(SIZES, COLORS, SHAPES))
    if n_objects == 1:
        return [
            {"objects": [_object(*look, position)], "relation": None}
            for look in looks
            for position in POSITIONS
        ]
    if n_objects == 2:
        return [
            {"objects": [_object(*a), _object(*b)], "relation": relation}
            for relation in ("horizontal", "vertical")
            for a in looks
            for b in looks
        ]
    raise ValueError(f"n_objects must be 1 or 2, got {n_objects}")


def true_spec(attributes: dict) -> dict:
    """The fully stated spec of an image's ground truth: what a perfect caption
    says (its :func:`wording` is the reference caption of the image)."""
    objects = [
        _object(o["size"], o["color"], o["shape"], o["position"])
        for o in attributes["objects"]
    ]
    return {"objects": objects, "relation": attributes["layout"]}


def wording(spec: dict) -> str:
    """The caption of a spec in one fixed wording: the world's grammar, no prefix,
    a relation phrased forward ("A to the left of B", "A above B"); an unstated
    shape reads "object" or "shape" as the world's :func:`describe` picks it
    with a fixed seed, so the same spec always gets the same words."""
    return describe(spec, np.random.default_rng(0), phrasing="forward")


def is_complete(spec: dict) -> bool:
    """True when a caption spec states everything: each object's colour, shape
    and size, and the position of a lone object or the relation of two."""
    objects = spec["objects"]
    stated = all(
        o.get(k) is not None for o in objects for k in ("color", "shape", "size")
    )
    if len(objects) == 1:
        return stated and objects[0].get("position") is not None
    return stated and spec["relation"] is not None


def _bag(spec: dict, attributes: dict, key: str) -> bool:
    stated = sorted(str(o.get(key)) for o in spec["objects"])
    return stated == sorted(str(o[key]) for o in attributes["objects"])


def caption_scores(spec: dict, attributes: dict) -> dict[str, float]:
    """How right a caption spec is about one image, judged by the world.

    Parameters
    ----------
    spec : dict
        What the caption asserts (``ToyDataset.specs`` format).
    attributes : dict
        The image's ground truth (``ToyDataset.attributes`` format).

    Returns
    -------
    dict of 1.0 / 0.0 (NaN where the attribute does not apply):

    - ``true``: the world says the caption fits the image;
    - ``exact``: true and every attribute stated (nothing left out);
    - ``count``: as many objects named as there are;
    - ``color``, ``shape``, ``size``: the right colours (shapes, sizes) named,
      as a bag, in any order; an attribute left out counts as wrong;
    - ``position`` (one object): the right place stated;
    - ``relation`` (two objects): the objects named with the right colours and
      shapes *and* in an order and arrangement the world confirms (their sizes
      are not checked here); wrong whenever colours or shapes are.
    """
    n_true, n_said = len(attributes["objects"]), len(spec["objects"])
    same = n_true == n_said
    out = {
        "true": float(relevance_matrix([spec], [attributes])[0, 0]),
        "count": float(same),
    }
    out["exact"] = float(out["true"] and is_complete(spec))
    for key in ("color", "shape", "size"):
        out[key] = float(same and _bag(spec, attributes, key))
    out["position"], out["relation"] = np.nan, np.nan
    if n_true == 1:
        said = spec["objects"][0].get("position") if same else None
        out["position"] = float(said == attributes["objects"][0]["position"])
    else:
        named = {
            "objects": [dict(o, size=None, position=None) for o in spec["objects"]],
            "relation": spec["relation"],
        }
        out["relation"] = float(
            same
            and spec["relation"] is not None
            and bool(relevance_matrix([named], [attributes])[0, 0])
        )
    return out


def score_table(specs: list[dict], attributes: list[dict]) -> dict[str, np.ndarray]:
    """:func:`caption_scores` of caption i for image i, stacked per key.

    Returns
    -------
    dict key -> float array of shape (n_images,), NaN where not applicable.
    """
    if len(specs) != len(attributes):
        raise ValueError(f"{len(specs)} specs for {len(attributes)} images")
    rows = [caption_scores(s, a) for s, a in zip(specs, attributes)]
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


_BLANK = {"color": None, "shape": None, "size": None, "position": None}
_ORDER = (("color", list(COLORS)), ("shape", SHAPES), ("size", list(SIZES)))


def next_choices(spec: dict | None) -> list[dict]:
    """The specs one decision further than ``spec``, for greedy decoding.

    The decisions, in order: how many objects (from ``None``: one or two,
    nothing else stated); then each object's colour, shape and size; then the
    position of a lone object, or for two objects the relation and which one
    comes first (four choices). A fully stated spec has no choices (``[]``).

    Returns
    -------
    list of spec dicts, each with exactly one more attribute decided.
    """
    if spec is None:
        return [
            {"objects": [dict(_BLANK)], "relation": None},
            {"objects": [dict(_BLANK), dict(_BLANK)], "relation": None},
        ]
    objects = spec["objects"]
    for j, obj in enumerate(objects):
        for key, values in _ORDER:
            if obj[key] is None:
                return [
                    {
                        **spec,
                        "objects": [
                            dict(o, **{key: v}) if i == j else dict(o)
                            for i, o in enumerate(objects)
                        ],
                    }
                    for v in values
                ]
    if len(objects) == 1:
        if objects[0]["position"] is not None:
            return []
        return [
            {"objects": [dict(objects[0], position=p)], "relation": None}
            for p in POSITIONS
        ]
    if spec["relation"] is not None:
        return []
    return [
        {"objects": [dict(o) for o in order], "relation": relation}
        for order in (objects, objects[::-1])
        for relation in ("horizontal", "vertical")
    ]
