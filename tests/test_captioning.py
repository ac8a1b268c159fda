"""Captioning by choice (cmalign.captioning) and the world's caption grammar
(cmalign.toy.grammar), checked against the world's relevance and brute force."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cmalign.captioning import best_caption, clip_score, greedy_decode
from cmalign.toy import grammar
from cmalign.toy.world import make_dataset, relevance_matrix


@pytest.fixture(scope="module")
def scenes():
    return make_dataset(200, seed=31, split="test")


def test_the_grammar_has_one_caption_per_scene(scenes):
    specs = grammar.full_specs(1) + grammar.full_specs(2)
    assert (len(grammar.full_specs(1)), len(grammar.full_specs(2))) == (320, 12800)
    texts = [grammar.wording(s) for s in specs]
    assert len(set(texts)) == len(texts)
    fits = relevance_matrix(specs, scenes.attributes)
    assert (fits.sum(dim=0) == 1).all()  # every scene: exactly one fully stated caption
    for a in scenes.attributes:
        assert specs[
            int(fits[:, scenes.attributes.index(a)].nonzero())
        ] == grammar.true_spec(a)


def test_full_specs_rejects_three_objects():
    with pytest.raises(ValueError, match="n_objects"):
        grammar.full_specs(3)


def _pair(colors=("red", "blue"), shapes=("circle", "square"), layout="horizontal"):
    objects = [
        {"color": c, "shape": s, "size": "small", "position": None, "center": (10, 20)}
        for c, s in zip(colors, shapes)
    ]
    return {"objects": objects, "layout": layout}


def test_caption_scores_by_hand():
    image = _pair()
    truth = grammar.true_spec(image)
    assert grammar.caption_scores(truth, image) == {
        "true": 1.0,
        "count": 1.0,
        "exact": 1.0,
        "color": 1.0,
        "shape": 1.0,
        "size": 1.0,
        "position": pytest.approx(np.nan, nan_ok=True),
        "relation": 1.0,
    }
    reversed_ = {"objects": truth["objects"][::-1], "relation": "horizontal"}
    got = grammar.caption_scores(reversed_, image)
    assert (got["true"], got["color"], got["shape"], got["relation"]) == (0, 1, 1, 0)
    partial = {
        "objects": [dict(o, size=None) for o in truth["objects"]],
        "relation": "horizontal",
    }
    got = grammar.caption_scores(partial, image)
    assert (got["true"], got["exact"], got["size"], got["relation"]) == (1, 0, 0, 1)
    lone = {"objects": [dict(truth["objects"][0], position="left")], "relation": None}
    got = grammar.caption_scores(lone, image)
    assert (got["count"], got["color"], got["relation"]) == (0, 0, 0)


def test_next_choices_end_in_exactly_the_grammar():
    seen, frontier = [], [None]
    while frontier:
        spec = frontier.pop()
        children = grammar.next_choices(spec)
        if not children:
            seen.append(grammar.wording(spec))
        frontier += children
    grammar_texts = {
        grammar.wording(s) for s in grammar.full_specs(1) + grammar.full_specs(2)
    }
    assert set(seen) == grammar_texts
    assert len(seen) == 320 + 2 * 12800  # a pair is reached from either object first


def test_best_caption_is_the_argmax_with_ties_to_the_first():
    image = F.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    texts = F.normalize(torch.tensor([[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]]), dim=1)
    index, cos = best_caption(image, texts)
    assert index.tolist() == [0, 2]
    assert torch.allclose(cos, torch.tensor([2**-0.5, 1.0]))


def test_clip_score_by_hand():
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.6, 0.8], [-0.6, 0.8]])
    assert torch.allclose(clip_score(a, b), torch.tensor([1.5, 0.0]))
    assert torch.allclose(clip_score(a, b, w=1.0), torch.tensor([0.6, 0.0]))
    with pytest.raises(ValueError, match="paired"):
        clip_score(a, b[:1])
    with pytest.raises(ValueError, match="text_emb"):
        clip_score(a, b * 2)


def test_greedy_decode_matches_brute_force_on_an_additive_score():
    """With a score that adds over attributes, greedy finds the global best."""
    g = torch.Generator().manual_seed(0)
    values = {"a": 3, "b": 4}
    table = {
        k: F.normalize(torch.randn(n, 8, generator=g), dim=1) for k, n in values.items()
    }

    def next_choices(state):
        state = state or ()
        return (
            []
            if len(state) == 2
            else [state + (v,) for v in range(values["ab"[len(state)]])]
        )

    def embed(texts):
        rows = []
        for t in texts:
            parts = [int(x) for x in t.split(",") if x]
            rows.append(
                sum((table["ab"[i]][v] for i, v in enumerate(parts)), torch.zeros(8))
            )
        return F.normalize(torch.stack(rows) + 1e-3, dim=1)

    image = F.normalize(torch.randn(5, 8, generator=g), dim=1)
    states, n_texts = greedy_decode(
        image,
        next_choices=next_choices,
        to_text=lambda s: ",".join(map(str, s)),
        embed=embed,
    )
    assert n_texts <= 3 + 3 * 4
    for i, state in enumerate(states):
        first = max(range(3), key=lambda v: float(embed([str(v)])[0] @ image[i]))
        assert state[0] == first
        best = max(range(4), key=lambda v: float(embed([f"{first},{v}"])[0] @ image[i]))
        assert state == (first, best)


def test_score_table_stacks_per_image(scenes):
    specs = [grammar.true_spec(a) for a in scenes.attributes]
    table = grammar.score_table(specs, scenes.attributes)
    assert (table["exact"] == 1).all()
    single = np.array([len(a["objects"]) == 1 for a in scenes.attributes])
    assert np.isnan(table["relation"][single]).all()
    assert np.isnan(table["position"][~single]).all()
    assert list(itertools.islice(table, 2)) == ["true", "count"]
