"""Shared fixtures: the toy model, the offline stand-in for OpenAI's ViT-B/32, photos."""

from __future__ import annotations

import pytest
import torch

import cmalign
from cmalign import standin
from cmalign.data import load_caption_folder, photos_dir


@pytest.fixture(scope="session")
def toy_bundle() -> cmalign.ClipBundle:
    return cmalign.load_clip("toy", device="cpu")


@pytest.fixture(scope="session")
def photos():
    return load_caption_folder(photos_dir())


@pytest.fixture(scope="session")
def openai_processor_dir(tmp_path_factory):
    """OpenAI's published config, preprocessor and tokenizer files (no weights)."""
    return standin.write_processor_files(tmp_path_factory.mktemp("openai-files"))


@pytest.fixture(scope="session")
def standin_cache(tmp_path_factory):
    """A hub cache holding the stand-in for openai/clip-vit-base-patch32 with
    ``model.safetensors`` (see :mod:`cmalign.standin`; random weights)."""
    cache = tmp_path_factory.mktemp("hf-cache-safetensors")
    standin.build_hub_cache(cache, layout="safetensors")
    return cache


@pytest.fixture(scope="session")
def standin_bin_cache(tmp_path_factory):
    """The same stand-in with ``pytorch_model.bin`` only (the repo's main branch)."""
    cache = tmp_path_factory.mktemp("hf-cache-bin")
    standin.build_hub_cache(cache, layout="bin")
    return cache


@pytest.fixture(scope="session")
def vitb32_bundle(standin_cache) -> cmalign.ClipBundle:
    """``load_clip("openai/clip-vit-base-patch32")`` on the stand-in, offline."""
    return cmalign.load_clip(standin.REPO_ID, device="cpu", cache_dir=standin_cache)


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def random_unit(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """(n, dim) random unit vectors."""
    return torch.nn.functional.normalize(
        torch.randn(n, dim, generator=generator), dim=-1
    )
