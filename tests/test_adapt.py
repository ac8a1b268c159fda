"""Few-shot selection, linear probes, WiSE-FT interpolation, train/test split by image."""

import pytest
import torch

from cmalign.adapt import (
    choose_alpha,
    few_shot_indices,
    fit_linear_probe,
    interpolate_weights,
)
from cmalign.data import CaptionSet, split_by_image
from tests.conftest import random_unit


def test_few_shot_indices():
    labels = [0] * 10 + [1] * 5 + [2] * 3
    picked = few_shot_indices(labels, 3, seed=1)
    assert sorted(labels[i] for i in picked) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert len(set(picked)) == 9 and picked == few_shot_indices(labels, 3, seed=1)
    with pytest.raises(ValueError, match="class 2 has 3 examples, fewer than shots=4"):
        few_shot_indices(labels, 4)


def test_linear_probe_separates_separable_classes(generator):
    centres = random_unit(3, 16, generator)
    labels = torch.arange(3).repeat(20)
    noisy = centres[labels] + 0.05 * torch.randn(60, 16, generator=generator)
    emb = torch.nn.functional.normalize(noisy, dim=1)
    probe = fit_linear_probe(emb[:30], labels[:30].tolist())
    assert (probe.predict(emb[30:].numpy()) == labels[30:].numpy()).all()
    with pytest.raises(ValueError, match="3 labels for 30 images"):
        fit_linear_probe(emb[:30], [0, 1, 2])


def test_interpolate_weights():
    a = {"w": torch.zeros(2, 2), "ids": torch.arange(3)}
    b = {"w": torch.ones(2, 2), "ids": torch.arange(3) + 5}
    assert torch.equal(interpolate_weights(a, b, 0.0)["w"], a["w"])
    assert torch.equal(interpolate_weights(a, b, 1.0)["w"], b["w"])
    half = interpolate_weights(a, b, 0.25)
    assert torch.allclose(half["w"], torch.full((2, 2), 0.25))
    assert torch.equal(half["ids"], a["ids"])  # integer buffers are not mixed
    with pytest.raises(ValueError, match="alpha must be in"):
        interpolate_weights(a, b, 1.5)
    with pytest.raises(ValueError, match="differ in keys"):
        interpolate_weights(a, {"w": b["w"]}, 0.5)
    with pytest.raises(ValueError, match="w: shapes"):
        interpolate_weights(a, {"w": torch.ones(3), "ids": b["ids"]}, 0.5)


def test_interpolating_a_real_clip_state(toy_bundle):
    state = {k: v.clone() for k, v in toy_bundle.model.state_dict().items()}
    moved = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    mixed = interpolate_weights(state, moved, 0.5)
    name = next(k for k, v in state.items() if v.is_floating_point())
    assert torch.allclose(mixed[name], state[name] + 0.5)


def test_split_by_image_never_shares_an_image():
    images = [f"{i}.png" for i in range(10)]
    text_to_image = [i // 3 for i in range(30)]
    captions = [f"caption {t} of image {i}" for t, i in enumerate(text_to_image)]
    data = CaptionSet(images, captions, text_to_image)
    train, test = split_by_image(data, test_fraction=0.3, seed=4)
    assert len(test.images) == 3 and len(train.images) == 7
    assert not set(train.images) & set(test.images)
    for part in (train, test):
        for caption, i in zip(part.captions, part.text_to_image):
            assert caption.endswith(f"of image {part.images[i].split('.')[0]}")
    assert sorted(train.captions + test.captions) == sorted(captions)
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_image(data, test_fraction=1.0)


def test_choose_alpha_best_average_or_best_new_task_within_a_drop():
    alphas = [0.0, 0.25, 0.5, 0.75, 1.0]
    new = [0.40, 0.60, 0.70, 0.80, 0.85]
    old = [0.95, 0.94, 0.92, 0.80, 0.70]
    # averages 0.675, 0.77, 0.81, 0.80, 0.775 -> alpha 0.5, not the best new task
    assert choose_alpha(alphas, new, old) == 0.5
    # original kept within 0.01 of alpha=0 (0.95): alphas 0 and 0.25 -> 0.25
    assert choose_alpha(alphas, new, old, max_drop=0.01) == 0.25
    assert choose_alpha(alphas, new, old, max_drop=0.3) == 1.0
    assert choose_alpha(alphas, new, old, max_drop=0.0) == 0.0
    # ties go to the smaller alpha
    assert choose_alpha([0.0, 0.5, 1.0], [0.5, 0.6, 0.7], [0.7, 0.6, 0.5]) == 0.0
    assert (
        choose_alpha([0.0, 0.5, 1.0], [0.5, 0.7, 0.7], [0.7, 0.7, 0.7], max_drop=0)
        == 0.5
    )
    with pytest.raises(ValueError, match="one score per alpha"):
        choose_alpha(alphas, new[:3], old)
    with pytest.raises(ValueError, match="increase from 0"):
        choose_alpha([0.5, 0.0], [0.1, 0.2], [0.3, 0.4])
