"""Describe a toy scene in words, and record exactly what each caption claims.

Every caption comes with a *spec*: the attributes it states (None for those
it leaves out) and the relation it asserts, so that
:func:`cmalign.toy.world.relevance_matrix` can decide which images it fits.
Paraphrases ("a photo of ...", "there is ...") and optional attributes make
one scene describable in many ways, as real captions are.
"""

from __future__ import annotations

import numpy as np

from .spec import POSITION_WORDS

_PREFIXES = ["", "a photo of ", "an image of ", "there is ", "a picture of "]


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


def caption(attrs: dict, rng: np.random.Generator) -> tuple[str, dict]:
    """One caption of the scene ``attrs`` and its spec (what it asserts)."""
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


def describe(spec: dict, rng: np.random.Generator, phrasing: str | None = None) -> str:
    """Words for a caption spec, in the same grammar as :func:`caption`.

    The inverse of the spec that :func:`caption` returns: attributes that are
    None are left out ("a red object"), a stated relation is phrased either
    way round at random ("A to the left of B" or "B to the right of A"), or
    as ``phrasing`` says: "forward" (the first) or "backward" (the second),
    both without a prefix. Used to write
    captions with exact ground truth, such as hard negatives
    (:mod:`cmalign.toy.negatives`).
    """
    phrases = []
    for obj in spec["objects"]:
        words = [obj[k] for k in ("size", "color") if obj.get(k)]
        words.append(obj.get("shape") or ("object", "shape")[rng.integers(2)])
        phrase = " ".join([article(words[0]), *words])
        if obj.get("position"):
            phrase += " " + POSITION_WORDS[obj["position"]]
        phrases.append(phrase)
    if phrasing not in (None, "forward", "backward"):
        raise ValueError(
            f"phrasing must be None, 'forward' or 'backward', got {phrasing!r}"
        )
    prefix = "" if phrasing else _PREFIXES[rng.integers(len(_PREFIXES))]
    if len(phrases) == 1:
        return (prefix + phrases[0]).strip()
    p0, p1 = phrases
    relation = spec["relation"]
    if relation is None:
        return prefix + f"{p0} and {p1}"
    ahead = ("to the left of", "above")[relation == "vertical"]
    behind = ("to the right of", "below")[relation == "vertical"]
    if phrasing == "forward" or (phrasing is None and rng.random() < 0.5):
        return prefix + f"{p0} {ahead} {p1}"
    return prefix + f"{p1} {behind} {p0}"
