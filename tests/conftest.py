"""Shared fixtures: the toy model, a random-weight ViT-B/32 checkpoint, photos."""

from __future__ import annotations

import pytest
import torch

import cmalign
from cmalign.data import load_caption_folder, photos_dir
from cmalign.toymodel import build_vitb32_random


@pytest.fixture(scope="session")
def toy_bundle() -> cmalign.ClipBundle:
    return cmalign.load_clip("toy", device="cpu")


@pytest.fixture(scope="session")
def photos():
    return load_caption_folder(photos_dir())


@pytest.fixture(scope="session")
def vitb32_dir(tmp_path_factory):
    """A random-weight CLIP with the real ViT-B/32 architecture, saved locally.

    See :func:`cmalign.toymodel.build_vitb32_random`: real shapes (224 px,
    512-d, 77 tokens) and code path, random weights, toy tokenizer.
    """
    folder = tmp_path_factory.mktemp("vit-b-32-random")
    model, processor = build_vitb32_random(seed=0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def random_unit(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """(n, dim) random unit vectors."""
    return torch.nn.functional.normalize(
        torch.randn(n, dim, generator=generator), dim=-1
    )
