import math

import pytest
import torch

from cmalign.geometry import alignment, modality_gap, uniformity
from tests.conftest import random_unit


def test_modality_gap_hand_worked():
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    texts = torch.tensor([[-1.0, 0.0]])
    gap = modality_gap(images, texts)
    assert torch.allclose(gap.vector, torch.tensor([1.5, 0.5]))
    assert gap.distance == pytest.approx(math.sqrt(2.5))


def test_alignment_and_uniformity_against_brute_force(generator):
    x, y = random_unit(20, 5, generator), random_unit(20, 5, generator)
    assert alignment(x, x) == 0.0
    brute = sum(float((a - b).norm() ** 2) for a, b in zip(x, y)) / 20
    assert alignment(x, y) == pytest.approx(brute, rel=1e-5)
    pairs = [
        float(torch.exp(-2 * (x[i] - x[j]).norm() ** 2))
        for i in range(20)
        for j in range(i + 1, 20)
    ]
    assert uniformity(x) == pytest.approx(math.log(sum(pairs) / len(pairs)), rel=1e-5)
    # collapsed features are the least uniform possible: log(1) = 0
    same = torch.nn.functional.normalize(torch.ones(5, 3), dim=-1)
    assert uniformity(same) == pytest.approx(0.0, abs=1e-6)
    assert uniformity(x) < -1.0


def test_geometry_errors(generator):
    x = random_unit(3, 4, generator)
    with pytest.raises(ValueError, match="paired"):
        alignment(x, x[:2])
    with pytest.raises(ValueError, match="at least 2"):
        uniformity(x[:1])
    with pytest.raises(ValueError, match="text_emb is not L2-normalised"):
        modality_gap(x, x * 2)
