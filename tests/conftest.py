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


OPEN_CLIP_VERSION = "3.3.0"


@pytest.fixture(scope="session")
def family_cache(tmp_path_factory):
    """One hub cache holding tiny stand-ins of the three families (CLIP, SigLIP,
    open_clip-only): published configs and tokenizers, random weights, towers
    shrunk to width 64 and 2 layers (see :mod:`cmalign.standin`). SigLIP's only
    where sentencepiece is installed (the ``siglip`` extra)."""
    import importlib.util

    cache = tmp_path_factory.mktemp("hf-cache-families")
    for family in ("clip", "siglip", "open_clip"):
        if family != "siglip" or importlib.util.find_spec("sentencepiece"):
            standin.build_hub_cache(cache, family=family, size="tiny")
    return cache


@pytest.fixture(scope="session")
def siglip_bundle(family_cache) -> cmalign.ClipBundle:
    """``load_clip("google/siglip-base-patch16-224")`` on the tiny stand-in."""
    pytest.importorskip(
        "sentencepiece", reason="SigLIP's tokenizer needs sentencepiece"
    )
    return cmalign.load_clip(
        standin.SIGLIP_REPO_ID, device="cpu", cache_dir=family_cache
    )


@pytest.fixture(scope="session")
def open_clip_bundle(family_cache) -> cmalign.ClipBundle:
    """``load_clip("hf-hub:laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K")``, tiny stand-in."""
    return cmalign.load_clip(
        "hf-hub:" + standin.OPEN_CLIP_REPO_ID, device="cpu", cache_dir=family_cache
    )


@pytest.fixture(scope="session")
def open_clip_site():
    """open_clip_torch installed with ``pip install --no-deps --target`` into
    ``.cache/`` (never into the venv: it would pull torchvision and another torch).
    Skips when pip cannot fetch it (no registry)."""
    import subprocess
    import sys

    site = standin.REPO_ROOT / ".cache" / f"open_clip_torch-{OPEN_CLIP_VERSION}"
    if not (site / "open_clip" / "__init__.py").is_file():
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps"]
        command += ["--target", str(site), f"open_clip_torch=={OPEN_CLIP_VERSION}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as err:
            pytest.skip(f"cannot install open_clip_torch for the parity test: {err}")
        if done.returncode != 0:
            pytest.skip(
                "cannot install open_clip_torch for the parity test: "
                + done.stderr.strip()[-300:]
            )
    return site
