import time

import pytest
import torch
from transformers import CLIPModel

import cmalign
from cmalign import models


def test_toy_model_loads_both_ways(toy_bundle):
    assert isinstance(toy_bundle.model, CLIPModel)
    assert not toy_bundle.model.training
    assert toy_bundle.name == "toy"
    plain = CLIPModel.from_pretrained(models.toy_model_dir())
    for (name, a), (_, b) in zip(
        toy_bundle.model.state_dict().items(), plain.state_dict().items()
    ):
        assert torch.equal(a, b), name


def test_local_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        cmalign.load_clip(str(tmp_path / "missing" / "model"))
    with pytest.raises(FileNotFoundError, match="no config.json"):
        cmalign.load_clip(str(tmp_path))
    file = tmp_path / "weights.bin"
    file.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is a file"):
        cmalign.load_clip(str(file))


def test_missing_toy_model_says_how_to_build_it(tmp_path, monkeypatch):
    monkeypatch.setenv("CMALIGN_TOY_MODEL", str(tmp_path / "none"))
    with pytest.raises(FileNotFoundError, match="python -m cmalign.train_toy"):
        cmalign.load_clip("toy")


def test_hub_id_offline_fails_fast_and_names_the_alternative(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))  # nothing cached
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=5.0: False)
    start = time.perf_counter()
    with pytest.raises(cmalign.HubUnavailableError, match=r"load_clip\('toy'\)"):
        cmalign.load_clip("openai/clip-vit-base-patch32")
    assert time.perf_counter() - start < 30


def test_hub_probe_honours_offline_flag(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert models._hub_reachable() is False


def test_vitb32_architecture_checkpoint(vitb32_dir, photos):
    """The real-model path: 224 px, 512-d, 77 tokens (random weights)."""
    bundle = cmalign.load_clip(str(vitb32_dir), device="cpu")
    assert (bundle.image_size, bundle.embed_dim, bundle.context_length) == (
        224,
        512,
        77,
    )
    image_emb = cmalign.embed_images(bundle, photos.images[:5], progress=False)
    text_emb = cmalign.embed_texts(bundle, photos.captions[:7], progress=False)
    assert image_emb.shape == (5, 512) and text_emb.shape == (7, 512)
    assert torch.allclose(image_emb.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(text_emb.norm(dim=1), torch.ones(7), atol=1e-5)
    pixels = cmalign.embed.preprocess_images(bundle, photos.images[:1])
    assert pixels.shape == (1, 3, 224, 224)
    with pytest.warns(UserWarning, match="1 of 2 captions exceed the 77-token context"):
        cmalign.embed_texts(bundle, ["a cat", "word " * 100], progress=False)


def test_real_hub_id_offline_fails_fast_without_offline_flag(tmp_path, monkeypatch):
    """No monkeypatched probe: on a machine without the hub, the real code path."""
    if models._hub_reachable(timeout=3):
        pytest.skip("the Hugging Face Hub is reachable from here")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(cmalign.HubUnavailableError, match="offline"):
        cmalign.load_clip("openai/clip-vit-base-patch32")
    assert time.perf_counter() - start < 30
