"""Hard negatives with exact ground truth: captions that *almost* fit an image.

A CLIP trained only against the other captions of a batch rarely meets a
caption with the same words in another order, so nothing forces it to read
the order (Yuksekgonul et al. 2023, "When and why vision-language models
behave like bags-of-words"). Here each caption gets edited copies that the
world can prove false for its image:

- ``"swap_colors"``: the colours of the two objects exchanged;
- ``"reverse_relation"``: the stated relation reversed (A left of B -> B left of A);
- ``"wrong_count"``: an object dropped from a two-object caption, or one added.

:func:`make_negatives` writes them, :func:`probe` measures how often a model
prefers the true caption (:func:`probe_outcomes` pair by pair, for intervals;
:func:`sorted_words` gives a bag-of-words baseline), and
:func:`cmalign.train.fit` trains with them as extra negatives
(``clip_loss(..., hard_negatives=...)``, NegCLIP). The module passes 300
lines because the negatives, the proof that each is false and the probes
that score them are one idea, read together in lesson 06.
Taught in notebooks/06_hard_negatives.ipynb.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch

from ..embed import embed_images, embed_texts
from ..metrics import scores_tie
from ..models import ClipBundle
from .captions import describe
from .spec import COLORS, HELDOUT_COMBOS, SHAPES
from .world import ToyDataset, make_dataset, relevance_matrix

KINDS = ("swap_colors", "reverse_relation", "wrong_count")


def perturb(spec: dict, kind: str, rng: np.random.Generator) -> dict | None:
    """An edited copy of a caption spec, or None when ``kind`` does not apply."""
    objects = spec["objects"]
    if kind == "swap_colors":
        if len(objects) != 2 or None in (objects[0]["color"], objects[1]["color"]):
            return None
        if objects[0]["color"] == objects[1]["color"]:
            return None
        new = copy.deepcopy(spec)
        a, b = new["objects"]
        a["color"], b["color"] = b["color"], a["color"]
        return new
    if kind == "reverse_relation":
        if spec["relation"] is None:
            return None
        return {"objects": copy.deepcopy(objects[::-1]), "relation": spec["relation"]}
    if kind == "wrong_count":
        if len(objects) == 2:
            kept = dict(objects[rng.integers(2)], position=None)
            return {"objects": [kept], "relation": None}
        extra = {
            "color": list(COLORS)[rng.integers(len(COLORS))],
            "shape": SHAPES[rng.integers(len(SHAPES))],
            "size": None,
            "position": None,
        }
        return {"objects": [dict(objects[0], position=None), extra], "relation": None}
    raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")


def _has_heldout_pair(spec: dict) -> bool:
    return any((o["color"], o["shape"]) in HELDOUT_COMBOS for o in spec["objects"])


@dataclass
class NegativeSet:
    """Hard-negative captions of a dataset's captions.

    Attributes
    ----------
    texts : list of str
    specs : list of dict
        What each negative asserts (same format as ``ToyDataset.specs``).
    owner : list of int
        Index of the caption each negative was made from.
    kind : list of str
        Which edit made it (one of ``KINDS``).
    attributes : list of dict
        The dataset's image attributes, to score negatives against any image.
    """

    texts: list[str]
    specs: list[dict]
    owner: list[int]
    kind: list[str]
    attributes: list[dict] = field(repr=False)

    def __len__(self) -> int:
        return len(self.texts)

    def relevance_between(
        self, negative_idx: list[int], image_idx: list[int]
    ) -> torch.Tensor:
        """Bool (len(negative_idx), len(image_idx)): which images a negative truly fits."""
        return relevance_matrix(
            [self.specs[i] for i in negative_idx],
            [self.attributes[i] for i in image_idx],
        )

    @cached_property
    def _by_owner(self) -> dict[int, list[int]]:
        """Indices of the negatives of each caption."""
        by_owner: dict[int, list[int]] = {}
        for i, t in enumerate(self.owner):
            by_owner.setdefault(t, []).append(i)
        return by_owner

    def sample(
        self, text_idx: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """One negative, drawn at random, per caption of ``text_idx`` that has any.

        Returns
        -------
        torch.Tensor of shape (m,), long, m <= len(text_idx)
        """
        picks = []
        for t in text_idx.tolist():
            options = self._by_owner.get(t)
            if options:
                k = torch.randint(len(options), (1,), generator=generator).item()
                picks.append(options[k])
        return torch.tensor(picks, dtype=torch.long)


def _negatives_of(
    specs: list[dict],
    attributes: list[dict],
    image_of: list[int],
    kinds: tuple[str, ...],
    rng: np.random.Generator,
    phrasings: list[str | None],
    skip_heldout: bool,
) -> NegativeSet:
    """Every applicable negative of each spec that the world proves false for
    its image ``attributes[image_of[t]]``, worded as ``phrasings[t]`` says."""
    texts, negative_specs, owner, kind_of = [], [], [], []
    for t, spec in enumerate(specs):
        for kind in kinds:
            new = perturb(spec, kind, rng)
            if new is None or (skip_heldout and _has_heldout_pair(new)):
                continue
            if relevance_matrix([new], [attributes[image_of[t]]])[0, 0]:
                continue
            texts.append(describe(new, rng, phrasings[t]))
            negative_specs.append(new)
            owner.append(t)
            kind_of.append(kind)
    return NegativeSet(texts, negative_specs, owner, kind_of, attributes)


def make_negatives(
    dataset: ToyDataset,
    *,
    kinds: tuple[str, ...] = KINDS,
    seed: int = 0,
    allow_heldout_pairs: bool = False,
) -> NegativeSet:
    """Every applicable hard negative of every caption of ``dataset``.

    A negative is kept only when the world proves it false for its caption's
    image (e.g. "a red object to the left of a red object" reversed is still
    true, so it is dropped). Unless ``allow_heldout_pairs``, negatives that
    name a held-out colour-shape pair are dropped too, so training on them
    cannot leak the pairs the ``"heldout_combos"`` split tests.
    """
    for kind in kinds:
        if kind not in KINDS:
            raise ValueError(f"kinds must be drawn from {KINDS}, got {kind!r}")
    return _negatives_of(
        dataset.specs,
        dataset.attributes,
        dataset.text_to_image,
        kinds,
        np.random.default_rng(seed),
        [None] * len(dataset.specs),
        skip_heldout=not allow_heldout_pairs,
    )


def sorted_words(text: str) -> str:
    """The caption's words in alphabetical order: what a bag-of-words reader sees.

    Embedding both a caption and its negative this way turns any text encoder
    into a bag-of-words one, a baseline for :func:`probe` (lesson 06): two
    captions with the same words become the same string.
    """
    return " ".join(sorted(text.split()))


def probe_outcomes(
    bundle: ClipBundle,
    dataset: ToyDataset,
    negatives: NegativeSet,
    words: Callable[[str], str] | None = None,
) -> dict[str, torch.Tensor]:
    """Per pair: does the model score the true caption above its hard negative?

    For each negative, with image i the image of the caption it was made
    from: a win when ``sim(i, caption) > sim(i, negative)`` and the two scores
    do not tie (:func:`cmalign.metrics.scores_tie`: equal up to float
    rounding, as identical strings embedded in different batches are).

    Parameters
    ----------
    words : callable, optional
        Applied to both captions before embedding, e.g. :func:`sorted_words`
        for a bag-of-words baseline.

    Returns
    -------
    dict of torch.Tensor of shape (n_<kind>,)
        ``<kind>``: 1.0 for a win, 0.0 for a loss or a tie, one entry per
        negative of that kind, in the order of ``negatives``; feed them to
        :func:`cmalign.stats.bootstrap_ci` or, for two models on the same
        pairs, :func:`cmalign.stats.paired_difference_ci`.
    """
    words = words or (lambda text: text)
    image_emb = embed_images(bundle, dataset.images, progress=False)
    text_emb = embed_texts(bundle, [words(t) for t in dataset.captions], progress=False)
    negative_emb = embed_texts(
        bundle, [words(t) for t in negatives.texts], progress=False
    )
    owner = torch.as_tensor(negatives.owner, dtype=torch.long)
    image = image_emb[torch.as_tensor(dataset.text_to_image)[owner]]
    true_score = (image * text_emb[owner]).sum(1)
    negative_score = (image * negative_emb).sum(1)
    wins = (true_score > negative_score) & ~scores_tie(true_score, negative_score)
    kinds = np.array(negatives.kind)
    return {
        kind: wins[torch.from_numpy(kinds == kind)].float()
        for kind in dict.fromkeys(negatives.kind)
    }


def probe(
    bundle: ClipBundle,
    dataset: ToyDataset,
    negatives: NegativeSet,
    words: Callable[[str], str] | None = None,
) -> dict[str, float]:
    """How often the model scores a caption above its own hard negative.

    The mean of :func:`probe_outcomes` per kind (a tie fails). Chance is 50 %.
    A pure bag-of-words model scores 0 % where a negative has exactly the
    caption's words (swaps and reversals phrased like their caption, as in
    :func:`hard_pairs`); negatives worded afresh (:func:`make_negatives`) or
    with an object added or dropped differ in their words, so a bag of words
    can reject them.

    Returns
    -------
    dict
        Accuracy per kind (``probe_<kind>``) and the number of pairs
        (``n_<kind>``).
    """
    results = {}
    for kind, wins in probe_outcomes(bundle, dataset, negatives, words).items():
        results[f"probe_{kind}"] = wins.mean().item()
        results[f"n_{kind}"] = len(wins)
    return results


def hard_pairs(
    n: int,
    *,
    seed: int,
    split: str = "train",
    kinds: tuple[str, ...] = ("swap_colors", "reverse_relation"),
    phrasing: str = "forward",
) -> tuple[ToyDataset, NegativeSet]:
    """``n`` scenes of two objects that differ in colour and shape, each with one
    fully stated caption and its hard negatives, the probe of lesson 05.

    Captions read "a red circle to the left of a blue square" (``phrasing``
    "forward") or "a blue square to the right of a red circle" ("backward"),
    or either at random per scene ("mixed"); each negative is phrased like
    its caption, so only the order of the words differs.
    """
    rng = np.random.default_rng([seed, 1])
    pool = make_dataset(2 * n + 20, seed=seed, split=split, pairs_only=True)
    keep = []
    for i, attrs in enumerate(pool.attributes):
        objects = attrs["objects"]
        if len(objects) == 2 and all(
            objects[0][k] != objects[1][k] for k in ("color", "shape")
        ):
            keep.append(i)
    if len(keep) < n:
        raise ValueError(f"only {len(keep)} suitable scenes for n={n}; lower n")
    keep = keep[:n]
    attributes = [pool.attributes[i] for i in keep]
    specs = [
        {
            "objects": [
                {
                    "color": o["color"],
                    "shape": o["shape"],
                    "size": None,
                    "position": None,
                }
                for o in a["objects"]
            ],
            "relation": a["layout"],
        }
        for a in attributes
    ]
    if phrasing not in ("forward", "backward", "mixed"):
        raise ValueError(
            f"phrasing must be forward, backward or mixed, got {phrasing!r}"
        )
    ways = [
        phrasing if phrasing != "mixed" else ("forward", "backward")[rng.integers(2)]
        for _ in specs
    ]
    captions = [describe(s, rng, way) for s, way in zip(specs, ways)]
    scenes = ToyDataset([pool.images[i] for i in keep], captions, attributes, specs)
    negatives = _negatives_of(
        specs,
        attributes,
        list(range(n)),
        kinds,
        rng,
        ways,
        skip_heldout=split == "train",  # keep the held-out pairs unseen
    )
    return scenes, negatives
