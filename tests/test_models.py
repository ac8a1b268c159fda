import json
import shutil
import time

import pytest
import torch
from safetensors.torch import load_file
from transformers import CLIPModel, CLIPTokenizer

import cmalign
from cmalign import models, standin


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
    with pytest.raises(FileNotFoundError, match="python -m cmalign.toy.train"):
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


def _toy_copy(folder, weights="safetensors", drop=()):
    """A copy of the shipped toy checkpoint, with its weights as ``.bin`` if asked."""
    folder.mkdir(parents=True)
    for item in models.toy_model_dir().iterdir():
        if item.name not in drop and item.name != "model.safetensors":
            shutil.copy(item, folder / item.name)
    if weights == "bin":
        state = load_file(models.toy_model_dir() / "model.safetensors")
        torch.save(state, folder / "pytorch_model.bin")
    elif weights == "safetensors":
        shutil.copy(models.toy_model_dir() / "model.safetensors", folder)
    return folder


def _as_hub_cache(cache, repo_id, **kwargs):
    return _toy_copy(standin.snapshot_folder(cache, repo_id), **kwargs)


def test_bin_only_checkpoint_loads_through_weights_only_and_says_so(
    tmp_path, toy_bundle
):
    folder = _toy_copy(tmp_path / "bin", weights="bin")
    bundle = cmalign.load_clip(str(folder), device="cpu")
    assert bundle.weights_file == "pytorch_model.bin"
    for (name, a), b in zip(
        bundle.model.state_dict().items(), toy_bundle.model.state_dict().values()
    ):
        assert torch.equal(a, b), name
    with pytest.raises(models.RefusedWeightsError, match="only as pytorch_model.bin"):
        cmalign.load_clip(str(folder), safetensors_only=True)


def test_hub_cache_tells_refused_format_from_not_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=5.0: False)
    cache = tmp_path / "hub"
    _as_hub_cache(cache, "someone/toy-clip", weights="bin")
    bundle = cmalign.load_clip("someone/toy-clip", device="cpu", cache_dir=cache)
    assert bundle.weights_file == "pytorch_model.bin"
    with pytest.raises(models.RefusedWeightsError, match="local Hugging Face cache"):
        cmalign.load_clip("someone/toy-clip", cache_dir=cache, safetensors_only=True)
    with pytest.raises(cmalign.HubUnavailableError, match="not in the local"):
        cmalign.load_clip("someone/other-clip", cache_dir=cache)


@pytest.mark.parametrize(
    ("drop", "edit", "message"),
    [
        (("tokenizer.json", "vocab.json", "merges.txt"), None, "no tokenizer files"),
        (
            ("processor_config.json", "preprocessor_config.json"),
            None,
            "no image processor",
        ),
        ((), {"model_type": "bert"}, "model_type 'bert', not 'clip'"),
    ],
)
def test_broken_snapshots_are_named(tmp_path, drop, edit, message):
    cache = tmp_path / "hub"
    snapshot = _as_hub_cache(cache, "someone/broken-clip", drop=drop)
    if edit:
        config = json.loads((snapshot / "config.json").read_text())
        (snapshot / "config.json").write_text(json.dumps({**config, **edit}))
    with pytest.raises(OSError, match=message) as err:
        cmalign.load_clip("someone/broken-clip", cache_dir=cache)
    assert "someone/broken-clip" in str(err.value) and str(snapshot) in str(err.value)


def test_empty_name_means_the_default(monkeypatch):
    seen = []
    monkeypatch.setattr(
        models, "_cached_snapshot", lambda name, cache, *config: seen.append(name)
    )
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=5.0: False)
    for name in (None, ""):
        with pytest.raises(cmalign.HubUnavailableError):
            cmalign.load_clip(name)
    assert set(seen) == {models.DEFAULT_MODEL}


def test_openai_tokenizer_gives_openai_ids(openai_processor_dir):
    tokenizer = CLIPTokenizer.from_pretrained(openai_processor_dir)
    assert tokenizer("a photo of a cat")["input_ids"] == standin.CAT_IDS
    assert len(tokenizer) == 49408
    # OpenAI's files set no model_max_length: the 77-token limit must come from
    # the model config, which is where cmalign takes it.
    assert tokenizer.model_max_length > 10**6
    assert tokenizer.pad_token == tokenizer.eos_token == "<|endoftext|>"
    # zero-shot prompts as OpenAI's prompt-engineering notebook tokenises them
    ids = tokenizer("a photo of a goldfish.")["input_ids"]
    assert ids[0] == 49406 and ids[-1] == 49407 and ids[-2] == 269  # "." alone


def test_toy_folder_has_both_transformers_layouts():
    names = {p.name for p in models.toy_model_dir().iterdir()}
    assert {"preprocessor_config.json", "vocab.json", "merges.txt"} <= names  # 4.x
    assert {"processor_config.json", "tokenizer.json"} <= names  # 5.x


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["bin", "safetensors"])
def test_openai_id_loads_from_the_hub_cache_in_both_layouts(
    layout, standin_cache, standin_bin_cache, photos
):
    """The real hub id through transformers' cache resolution, offline."""
    cache = standin_bin_cache if layout == "bin" else standin_cache
    bundle = cmalign.load_clip(standin.REPO_ID, device="cpu", cache_dir=cache)
    assert bundle.weights_file == (
        "pytorch_model.bin" if layout == "bin" else "model.safetensors"
    )
    assert (bundle.image_size, bundle.embed_dim, bundle.context_length) == (
        224,
        512,
        77,
    )
    assert bundle.model.config.text_config.eos_token_id == 2  # legacy argmax pooling
    assert (
        bundle.processor.tokenizer("a photo of a cat")["input_ids"] == standin.CAT_IDS
    )
    pixels = cmalign.embed.preprocess_images(bundle, photos.images[:1])
    assert pixels.shape == (1, 3, 224, 224)


@pytest.mark.slow
def test_embedding_on_the_openai_standin(vitb32_bundle, photos):
    bundle = vitb32_bundle
    image_emb = cmalign.embed_images(bundle, photos.images[:5], progress=False)
    text_emb = cmalign.embed_texts(bundle, photos.captions[:7], progress=False)
    assert image_emb.shape == (5, 512) and text_emb.shape == (7, 512)
    assert torch.allclose(image_emb.norm(dim=1), torch.ones(5), atol=1e-5)
    assert torch.allclose(text_emb.norm(dim=1), torch.ones(7), atol=1e-5)
    # embed_texts equals the bare transformers path on the same tokens
    tokens = bundle.processor.tokenizer(
        photos.captions[:7], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        bare = bundle.model.get_text_features(**tokens)
    bare = bare if isinstance(bare, torch.Tensor) else bare.pooler_output
    assert torch.allclose(
        text_emb, torch.nn.functional.normalize(bare, dim=-1), atol=1e-5
    )
    long_caption = "a photo of " + "a very " * 40 + "long cat"  # > 77 real BPE tokens
    assert len(bundle.processor.tokenizer(long_caption)["input_ids"]) > 77
    with pytest.warns(UserWarning, match="1 of 2 captions exceed the 77-token context"):
        cut = cmalign.embed_texts(bundle, ["a cat", long_caption], progress=False)
    kept = bundle.processor.tokenizer(
        [long_caption], truncation=True, max_length=77, return_tensors="pt"
    )
    assert kept["input_ids"].shape == (1, 77) and kept["input_ids"][0, -1] == 49407
    with torch.no_grad():
        bare = bundle.model.get_text_features(**kept)
    bare = bare if isinstance(bare, torch.Tensor) else bare.pooler_output
    assert torch.allclose(
        cut[1], torch.nn.functional.normalize(bare, dim=-1)[0], atol=1e-5
    )


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


def test_save_clip_writes_both_layouts_and_round_trips(tmp_path):
    from cmalign.checkpoint import inspect_folder, save_clip
    from cmalign.toy.model import build_toy_clip

    model, processor = build_toy_clip(seed=2, width=32, vision_layers=1, text_layers=1)
    folder = save_clip(model, processor, tmp_path / "tiny")
    contents = inspect_folder(folder)
    assert contents.problems() == [] and contents.safetensors == "model.safetensors"
    names = {p.name for p in folder.iterdir()}
    assert {"preprocessor_config.json", "vocab.json", "merges.txt"} <= names
    reloaded = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    text = "a photo of a large red circle on the left"
    assert reloaded(text)["input_ids"] == processor.tokenizer(text)["input_ids"]
    bundle = cmalign.load_clip(str(folder), device="cpu")
    assert torch.equal(bundle.model.logit_scale, model.logit_scale)
