"""Hard negatives of the toy world: exact ground truth, no leaks, the probe."""

import numpy as np
import pytest
import torch

from cmalign.toy.captions import describe
from cmalign.toy.negatives import (
    KINDS,
    NegativeSet,
    hard_pairs,
    make_negatives,
    perturb,
    probe,
    probe_outcomes,
    sorted_words,
)
from cmalign.toy.spec import HELDOUT_COMBOS
from cmalign.toy.world import make_dataset, relevance_matrix

TWO = {
    "objects": [
        {"color": "red", "shape": "circle", "size": None, "position": None},
        {"color": "blue", "shape": "square", "size": "large", "position": None},
    ],
    "relation": "horizontal",
}


def test_describe_and_perturb_by_hand():
    rng = np.random.default_rng(0)
    assert (
        describe(TWO, rng, "forward")
        == "a red circle to the left of a large blue square"
    )
    assert (
        describe(TWO, rng, "backward")
        == "a large blue square to the right of a red circle"
    )
    swapped = describe(perturb(TWO, "swap_colors", rng), rng, "forward")
    assert swapped == "a blue circle to the left of a large red square"
    reversed_ = describe(perturb(TWO, "reverse_relation", rng), rng, "forward")
    assert reversed_ == "a large blue square to the left of a red circle"
    assert len(perturb(TWO, "wrong_count", rng)["objects"]) == 1
    with pytest.raises(ValueError, match="kind must be one of"):
        perturb(TWO, "negate", rng)


def test_every_negative_is_false_for_its_image_and_true_captions_stay_true():
    data = make_dataset(300, seed=5, split="train", captions_per_image=2)
    negatives = make_negatives(data, seed=1)
    assert set(negatives.kind) == set(KINDS)
    images = [data.text_to_image[t] for t in negatives.owner]
    fits = relevance_matrix(negatives.specs, [data.attributes[i] for i in images])
    assert not fits.diagonal().any()
    for spec in negatives.specs:  # no held-out pair leaks into training text
        assert not any(
            (o["color"], o["shape"]) in HELDOUT_COMBOS for o in spec["objects"]
        )
    picked = negatives.sample(
        torch.arange(len(data.captions)), torch.Generator().manual_seed(0)
    )
    owners = [negatives.owner[i] for i in picked.tolist()]
    assert len(set(owners)) == len(owners)  # at most one per caption


@pytest.mark.parametrize("phrasing", ["forward", "backward"])
def test_hard_pairs(phrasing):
    scenes, negatives = hard_pairs(30, seed=3, split="test", phrasing=phrasing)
    assert len(scenes) == 30 and scenes.relevance().diagonal().all()
    word = {"forward": ("left", "above"), "backward": ("right", "below")}[phrasing]
    assert all(any(w in c for w in word) for c in scenes.captions + negatives.texts)
    images = [scenes.attributes[t] for t in negatives.owner]
    assert not relevance_matrix(negatives.specs, images).diagonal().any()


def test_probe_of_a_bag_of_words_model_is_zero_on_swaps(toy_bundle):
    scenes, negatives = hard_pairs(20, seed=4, split="test")
    scores = probe(toy_bundle, scenes, negatives)
    assert set(scores) == {
        "probe_swap_colors",
        "n_swap_colors",
        "probe_reverse_relation",
        "n_reverse_relation",
    }
    # the same captions as their own "negatives": a tie, which counts as a failure
    same = NegativeSet(
        list(scenes.captions),
        scenes.specs,
        list(range(20)),
        ["swap_colors"] * 20,
        scenes.attributes,
    )
    assert probe(toy_bundle, scenes, same)["probe_swap_colors"] == 0.0


def test_bag_of_words_ties_on_same_word_negatives_and_a_tie_fails(toy_bundle):
    """Sorted words make a caption and its swap/reversal the same string: the
    scores tie (up to rounding between batches), and a tie is not a win."""
    assert sorted_words("a red circle to the left of a blue square") == (
        "a a blue circle left of red square the to"
    )
    scenes, negatives = hard_pairs(30, seed=5, split="test")
    bag = probe_outcomes(toy_bundle, scenes, negatives, words=sorted_words)
    assert set(bag) == {"swap_colors", "reverse_relation"}
    for wins in bag.values():
        assert len(wins) == 30 and wins.sum() == 0
    plain = probe_outcomes(toy_bundle, scenes, negatives)
    means = probe(toy_bundle, scenes, negatives)
    for kind, wins in plain.items():
        assert means[f"probe_{kind}"] == pytest.approx(float(wins.mean()))
        assert means[f"n_{kind}"] == len(wins)
