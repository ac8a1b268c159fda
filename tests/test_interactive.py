"""The interactive map carries what it promises: thumbnails, captions, exact neighbours."""

import numpy as np
import pytest
import torch

from cmalign.interactive import interactive_map
from cmalign.toy.world import make_dataset
from tests.conftest import random_unit


@pytest.fixture(scope="module")
def small_world(toy_bundle):
    import cmalign

    data = make_dataset(12, seed=3, captions_per_image=2)
    image_emb = cmalign.embed_images(toy_bundle, data.images, progress=False)
    text_emb = cmalign.embed_texts(toy_bundle, data.captions, progress=False)
    coords = np.random.default_rng(0).normal(size=(12 + 24, 2))
    pairs = [(data.text_to_image[t], t) for t in range(24)]
    return data, image_emb, text_emb, coords, pairs


def test_every_point_carries_its_thumbnail_or_caption(small_world):
    data, image_emb, text_emb, coords, pairs = small_world
    m = interactive_map(coords, image_emb, text_emb, data.images, data.captions, pairs)
    d = m.source.data
    assert all(
        t.startswith("<img src='data:image/jpeg;base64,") for t in d["thumb"][:12]
    )
    assert d["text"][12:] == data.captions  # no HTML-special characters in toy captions
    page = m.html
    assert page.count("data:image/jpeg;base64,") >= 12
    assert all(c in page for c in data.captions)
    assert "<script" in page and "cdn.bokeh.org" not in page  # BokehJS inlined


def test_neighbours_equal_exact_search_in_the_full_space(small_world):
    data, image_emb, text_emb, coords, pairs = small_world
    m = interactive_map(
        coords, image_emb, text_emb, data.images, data.captions, pairs, k=4
    )
    brute_i = (image_emb @ text_emb.T).argsort(dim=1, descending=True)[:, :4]
    brute_t = (text_emb @ image_emb.T).argsort(dim=1, descending=True)[:, :4]
    assert torch.equal(m.neighbours["image_to_text"], brute_i)
    assert torch.equal(m.neighbours["text_to_image"], brute_t)
    d = m.source.data
    assert (
        d["nn_ids"][0] == (12 + brute_i[0]).tolist()
    )  # point ids for the click highlight
    assert d["pair_ids"][0] == [12 + t for i, t in pairs if i == 0]
    first = d["neighbours"][12].split("<br>")[
        0
    ]  # caption 0's best image, with its cosine
    best = int(brute_t[0, 0])
    assert first.startswith(f"{float(text_emb[0] @ image_emb[best]):.3f} image {best}")


def test_bad_input_is_named(small_world):
    data, image_emb, text_emb, coords, pairs = small_world
    with pytest.raises(ValueError, match="coords has 35 rows"):
        interactive_map(coords[:-1], image_emb, text_emb, data.images, data.captions)
    bad = coords.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="coords row 3"):
        interactive_map(bad, image_emb, text_emb, data.images, data.captions)
    with pytest.raises(ValueError, match="text_emb 23 rows for 24 captions"):
        interactive_map(coords, image_emb, text_emb[:-1], data.images, data.captions)
    with pytest.raises(ValueError, match="not L2-normalised"):
        interactive_map(coords, image_emb * 2, text_emb, data.images, data.captions)
    with pytest.raises(ValueError, match="out of range"):
        interactive_map(
            coords, image_emb, text_emb, data.images, data.captions, [(12, 0)]
        )


def test_fifty_thousand_points_get_a_clear_error(generator):
    n_images, n_texts = 10_000, 40_000
    coords = np.zeros((n_images + n_texts, 2))
    with pytest.raises(ValueError, match="50000 points exceed max_points=20000"):
        interactive_map(
            coords,
            random_unit(n_images, 4, generator),
            random_unit(n_texts, 4, generator),
            [np.zeros((4, 4, 3), np.uint8)] * n_images,
            ["a caption"] * n_texts,
        )
