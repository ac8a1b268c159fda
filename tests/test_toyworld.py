import numpy as np
import pytest

from cmalign.toy.captions import article
from cmalign.toy.spec import COLORS, HELDOUT_COMBOS
from cmalign.toy.world import make_dataset, relevance_matrix


def test_deterministic_per_seed_and_split():
    a, b = make_dataset(30, seed=4), make_dataset(30, seed=4)
    assert a.captions == b.captions and a.attributes == b.attributes
    assert all(
        np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a.images, b.images)
    )
    assert make_dataset(30, seed=5).captions != a.captions
    assert make_dataset(30, seed=4, split="test").captions != a.captions


def test_drawn_colour_matches_ground_truth():
    data = make_dataset(200, seed=1)
    checked = 0
    for image, attrs in zip(data.images, data.attributes):
        pixels = np.asarray(image).astype(int)
        for obj in attrs["objects"]:
            if obj["shape"] in ("star", "cross") and obj["size"] == "small":
                continue  # thin shapes: the centre pixel is reliable only for solid ones
            x, y = (int(round(v)) for v in obj["center"])
            colour = pixels[y, x]
            nearest = min(
                COLORS, key=lambda c: np.abs(np.array(COLORS[c]) - colour).sum()
            )
            assert nearest == obj["color"], (attrs, colour)
            checked += 1
    assert checked > 100


def test_positions_match_layout():
    data = make_dataset(200, seed=2)
    for attrs in data.attributes:
        objs = attrs["objects"]
        if len(objs) == 1:
            x, y = objs[0]["center"]
            side = {"left": x < 20, "right": x > 20, "top": y < 20, "bottom": y > 20}
            assert side[objs[0]["position"]]
        else:
            axis = 0 if attrs["layout"] == "horizontal" else 1
            assert objs[0]["center"][axis] < objs[1]["center"][axis]


def test_heldout_split():
    train = make_dataset(500, seed=0)
    seen = {(o["color"], o["shape"]) for a in train.attributes for o in a["objects"]}
    assert not seen & HELDOUT_COMBOS
    held = make_dataset(200, seed=0, split="heldout_combos")
    for attrs in held.attributes:
        assert any((o["color"], o["shape"]) in HELDOUT_COMBOS for o in attrs["objects"])
    with pytest.raises(ValueError, match="split must be one of"):
        make_dataset(3, split="validation")


def _image(*objects, layout=None):
    return {
        "objects": [
            dict(zip(("color", "shape", "size", "position"), o)) for o in objects
        ],
        "layout": layout,
    }


def _spec(*objects, relation=None):
    return {
        "objects": [
            dict(zip(("color", "shape", "size", "position"), o)) for o in objects
        ],
        "relation": relation,
    }


def test_relevance_hand_cases():
    images = [
        _image(("red", "circle", "small", "left")),
        _image(("red", "circle", "large", "top")),
        _image(
            ("red", "circle", "small", None),
            ("blue", "square", "large", None),
            layout="horizontal",
        ),
        _image(
            ("blue", "square", "small", None),
            ("red", "circle", "small", None),
            layout="vertical",
        ),
    ]
    specs = [
        _spec(("red", "circle", None, None)),  # "a red circle": the one-object images
        _spec(("red", None, "small", "left")),  # "a small red object on the left"
        _spec(("blue", "square", None, None), ("red", "circle", None, None)),  # "and"
        _spec(
            ("red", "circle", None, None),
            ("blue", "square", None, None),
            relation="horizontal",
        ),  # "a red circle to the left of a blue square"
        _spec(
            ("blue", "square", None, None),
            ("red", "circle", None, None),
            relation="horizontal",
        ),  # "a blue square to the left of a red circle"
        _spec(
            ("blue", None, None, None), ("red", None, None, None), relation="vertical"
        ),
    ]
    expected = [
        [1, 1, 0, 0],
        [1, 0, 0, 0],
        [0, 0, 1, 1],
        [0, 0, 1, 0],
        [0, 0, 0, 0],
        [0, 0, 0, 1],
    ]
    assert relevance_matrix(specs, images).int().tolist() == expected


def test_every_caption_fits_its_own_image():
    data = make_dataset(300, seed=9, captions_per_image=2)
    relevance = data.relevance()
    assert relevance[range(600), data.text_to_image].all()
    assert relevance.sum(1).float().mean() > 1.5  # captions are often generic
    assert article("orange") == "an" and "a orange" not in " ".join(data.captions)
