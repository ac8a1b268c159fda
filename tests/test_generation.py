"""Generation guided by the shared space (cmalign.generation), the world's soft
drawing (cmalign.toy.soft_draw) and the judge that is not CLIP (cmalign.toy.judge)."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import cmalign
from cmalign import generation
from cmalign.toy import soft_draw
from cmalign.toy.draw import _SUPER, _draw_shape
from cmalign.toy.judge import agrees, judge_accuracy, read_scenes, to_tensor
from cmalign.toy.spec import COLORS, IMAGE_SIZE, SHAPES, SIZES
from cmalign.toy.world import make_dataset


@pytest.fixture(scope="module")
def bundle():
    return cmalign.load_clip("toy", device="cpu")


def _pil_mask(shape, cx, cy, d):
    canvas = Image.new("L", (IMAGE_SIZE * _SUPER,) * 2, 0)
    _draw_shape(
        ImageDraw.Draw(canvas), shape, cx * _SUPER, cy * _SUPER, d * _SUPER, 255
    )
    return np.asarray(canvas.resize((IMAGE_SIZE,) * 2, Image.BOX)) / 255


def _params_for(shape, color, d, cx, cy):
    p = soft_draw.init_params(1, 1)
    with torch.no_grad():
        p.center[:] = torch.logit(torch.tensor([cx, cy]) / IMAGE_SIZE)
        p.size[:] = torch.logit(torch.tensor((d - 6) / 16))
        p.shape[:] = -20.0
        p.shape[0, 0, SHAPES.index(shape)] = 20.0
        p.color[:] = torch.logit((torch.tensor(COLORS[color]) / 255).clamp(0.02, 0.98))
    return p


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("size", list(SIZES))
def test_soft_shapes_match_the_world_drawing(shape, size):
    d = SIZES[size]
    hard = _pil_mask(shape, 17.3, 21.6, d)
    p = _params_for(shape, "white", d, 17.3, 21.6)
    black = torch.zeros(1, 3, IMAGE_SIZE, IMAGE_SIZE)
    soft = soft_draw.soft_render(p, black, softness=0.3)[0, 0].detach().numpy() / (
        240 / 255
    )
    assert abs(soft.sum() - hard.sum()) < 0.05 * hard.sum()  # same area
    assert np.abs(soft - hard).sum() < 0.2 * hard.sum()  # in the same place


def test_every_parameter_gets_a_gradient():
    p = soft_draw.init_params(3, 2, generator=torch.Generator().manual_seed(0))
    image = soft_draw.soft_render(p, soft_draw.background(3))
    (image * torch.linspace(0, 1, IMAGE_SIZE)).sum().backward()
    for t in p.tensors():
        assert (
            t.grad is not None
            and torch.isfinite(t.grad).all()
            and t.grad.abs().sum() > 0
        )


def test_snap_returns_the_scene_that_was_drawn():
    p = _params_for("star", "cyan", 18, 28.5, 19.0)
    (obj,) = soft_draw.snap(p)[0]["objects"]
    assert (obj["shape"], obj["color"], obj["size"], obj["position"]) == (
        "star",
        "cyan",
        "large",
        "right",
    )


def test_the_judge_reads_rendered_scenes():
    acc = judge_accuracy(n_images=60, seed=5)
    assert acc["all"].mean() == 1.0
    assert acc["count"].mean() >= 0.95  # two large objects may touch


def test_the_judge_reads_soft_drawings_and_rejects_noise():
    p = _params_for("triangle", "green", 10, 20.0, 11.5)
    image = soft_draw.soft_render(p, soft_draw.background(1)).detach()
    (reading,) = read_scenes(image)
    spec = {
        "objects": [
            {"color": "green", "shape": "triangle", "size": "small", "position": "top"}
        ],
        "relation": None,
    }
    assert agrees(reading, spec)
    noise = torch.rand(
        1, 3, IMAGE_SIZE, IMAGE_SIZE, generator=torch.Generator().manual_seed(1)
    )
    assert not agrees(read_scenes(noise)[0], spec)
    with pytest.raises(ValueError, match="images"):
        read_scenes(image[0])


def test_model_input_matches_the_processor(bundle):
    images = make_dataset(4, seed=2, split="test").images
    ours = generation.model_input(bundle, to_tensor(images))
    theirs = bundle.processor.image_processor(images=images, return_tensors="pt")[
        "pixel_values"
    ]
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_augment_without_change_is_the_identity():
    x = torch.rand(2, 3, IMAGE_SIZE, IMAGE_SIZE)
    same = generation.augment(x, n_copies=3, max_shift=0.0, max_zoom=0.0)
    assert same.shape == (6, 3, IMAGE_SIZE, IMAGE_SIZE)
    assert torch.allclose(same, x.repeat(3, 1, 1, 1), atol=1e-5)
    with pytest.raises(ValueError, match="n_copies"):
        generation.augment(x, n_copies=0)


def test_optimise_raises_the_score_and_leaves_the_model_as_it_was(bundle):
    text_emb = cmalign.embed_texts(
        bundle,
        ["a large red circle on the left", "a small blue star at the top"],
        progress=False,
    )
    z = torch.zeros(2, 3, IMAGE_SIZE, IMAGE_SIZE, requires_grad=True)
    before = [p.clone() for p in bundle.model.parameters()]
    history = generation.optimise(
        bundle, lambda t: torch.sigmoid(z), [z], text_emb, steps=4, lr=0.1
    )
    assert len(history) == 4 and history[-1] > history[0]
    assert all(torch.equal(a, b) for a, b in zip(before, bundle.model.parameters()))
    assert all(p.grad is None for p in bundle.model.parameters())


def test_best_of_n_is_the_argmax_over_the_first_n():
    g = torch.Generator().manual_seed(3)
    images = torch.nn.functional.normalize(torch.randn(20, 8, generator=g), dim=1)
    texts = torch.nn.functional.normalize(torch.randn(5, 8, generator=g), dim=1)
    index, score = generation.best_of_n(images, texts, n=7)
    for p in range(5):
        cos = [float(texts[p] @ images[i]) for i in range(7)]
        assert index[p] == int(np.argmax(cos)) and np.isclose(score[p], max(cos))
    with pytest.raises(ValueError, match="n must"):
        generation.best_of_n(images, texts, n=21)
