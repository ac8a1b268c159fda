"""Shared fixtures: the toy model, a random-weight ViT-B/32 checkpoint, photos."""

from __future__ import annotations

import warnings

import pytest
import torch
from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

import cmalign
from cmalign.data import load_caption_folder, photos_dir
from cmalign.toymodel import CLIP_MEAN, CLIP_STD, build_tokenizer


@pytest.fixture(scope="session")
def toy_bundle() -> cmalign.ClipBundle:
    return cmalign.load_clip("toy", device="cpu")


@pytest.fixture(scope="session")
def photos():
    return load_caption_folder(photos_dir())


@pytest.fixture(scope="session")
def vitb32_dir(tmp_path_factory):
    """A random-weight CLIP with the real ViT-B/32 architecture, saved locally.

    ``CLIPConfig()`` defaults are openai/clip-vit-base-patch32's shapes: 224 px
    images, patch 32, 512-d space, 77-token context, 49,408-token vocabulary.
    The weights are random (the hub is unreachable here) and the tokenizer is
    the toy BPE with a 77-token limit, so only shapes and the code path are
    real, not the semantics.
    """
    folder = tmp_path_factory.mktemp("vit-b-32-random")
    torch.manual_seed(0)
    config = CLIPConfig()
    tokenizer = build_tokenizer(context_length=77)
    config.text_config.eos_token_id = tokenizer.eos_token_id
    config.text_config.bos_token_id = tokenizer.bos_token_id
    config.text_config.pad_token_id = tokenizer.pad_token_id
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        image_processor = CLIPImageProcessor(
            size={"shortest_edge": 224},
            crop_size={"height": 224, "width": 224},
            image_mean=CLIP_MEAN,
            image_std=CLIP_STD,
        )
    CLIPModel(config).save_pretrained(folder)
    CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(
        folder
    )
    return folder


@pytest.fixture
def generator() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def random_unit(n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
    """(n, dim) random unit vectors."""
    return torch.nn.functional.normalize(
        torch.randn(n, dim, generator=generator), dim=-1
    )
