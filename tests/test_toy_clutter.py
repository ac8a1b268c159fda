"""The toy world's clutter option (lesson 01's harder zero-shot task).

Clutter must leave the default world exactly as it is (the shipped model's
numbers are reproduced from it) and change only the pictures, never the
scenes, captions or colours, of a world drawn with the same seed.
"""

import numpy as np
import pytest

from cmalign.toy.world import make_dataset


def test_clutter_zero_is_the_default_world():
    a, b = (
        make_dataset(40, seed=3, split="test"),
        make_dataset(40, seed=3, split="test", clutter=0),
    )
    assert a.captions == b.captions and a.attributes == b.attributes
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images)
    )


@pytest.mark.parametrize("split", ["train", "test", "heldout_combos"])
def test_clutter_changes_the_pictures_only(split):
    clean = make_dataset(40, seed=5, split=split, captions_per_image=2)
    cluttered = make_dataset(40, seed=5, split=split, captions_per_image=2, clutter=12)
    assert cluttered.captions == clean.captions
    assert cluttered.attributes == clean.attributes
    changed = [
        not np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(clean.images, cluttered.images)
    ]
    assert all(changed)


def test_clutter_is_drawn_behind_the_objects():
    clean = make_dataset(200, seed=1, split="test")
    cluttered = make_dataset(200, seed=1, split="test", clutter=12)
    checked = 0
    for a, b, attrs in zip(clean.images, cluttered.images, clean.attributes):
        for obj in attrs["objects"]:
            if obj["size"] != "large" or obj["shape"] not in ("circle", "square"):
                continue  # solid shapes: their centre pixel is the object's colour
            x, y = (int(round(v)) for v in obj["center"])
            assert np.array_equal(np.asarray(a)[y, x], np.asarray(b)[y, x])
            checked += 1
    assert checked > 20


def test_clutter_is_deterministic_and_validated():
    a = make_dataset(10, seed=2, clutter=5)
    b = make_dataset(10, seed=2, clutter=5)
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images)
    )
    with pytest.raises(ValueError, match="clutter"):
        make_dataset(3, clutter=-1)
