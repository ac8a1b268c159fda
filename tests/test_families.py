"""The model contract every family fulfils, and the inputs written once (cmalign.inputs).

Family detection and its errors, the bundle's scores against the model's own
forward, OpenAI's rounding centre crop against transformers' flooring one,
OpenAI's text cleaning, truncation warnings that carry their data, and a
cache key that changes with everything that changes the numbers.
"""

import json
import warnings

import numpy as np
import pytest
import torch

import cmalign
from cmalign import cache, embed, families, standin
from cmalign.images import load_rgb_images
from cmalign.inputs import ImagePipeline, clean_text
from cmalign.utils import TruncationWarning


@pytest.fixture(scope="module")
def vitb32_tiny(family_cache):
    """openai/clip-vit-base-patch32's published files, towers shrunk, from a hub cache."""
    return cmalign.load_clip(standin.REPO_ID, device="cpu", cache_dir=family_cache)


def test_families_are_detected_from_the_folder(family_cache, tmp_path):
    assert families.detect(cmalign.models.toy_model_dir()) == "clip"
    for family, repo in standin.REPO_IDS.items():
        snapshot = standin.snapshot_folder(family_cache, repo)
        if snapshot.exists():  # SigLIP's only with sentencepiece installed
            assert families.detect(snapshot) == family
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(families.UnknownFamilyError, match="model_type 'bert'") as err:
        cmalign.load_clip(str(tmp_path))
    assert "open_clip" in str(err.value) and "'siglip'" in str(err.value)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "siglip2"}))
    with pytest.raises(families.UnknownFamilyError, match="NaFlex"):
        cmalign.load_clip(str(tmp_path))


def test_clip_scores_equal_the_models_forward(toy_bundle):
    data = cmalign.toy.make_dataset(6, seed=2)
    image_emb = cmalign.embed_images(toy_bundle, data.images, progress=False)
    text_emb = cmalign.embed_texts(toy_bundle, data.captions, progress=False)
    inputs = toy_bundle.processor(
        text=data.captions,
        images=data.images,
        padding=True,
        truncation=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        out = toy_bundle.model(**inputs)
    assert torch.allclose(
        toy_bundle.logits(image_emb, text_emb), out.logits_per_image, atol=1e-4
    )
    probabilities = toy_bundle.probabilities(image_emb, text_emb)
    assert torch.allclose(probabilities, out.logits_per_image.softmax(1), atol=1e-5)
    assert torch.allclose(probabilities.sum(1), torch.ones(6))


def test_a_bundle_built_by_hand_gets_clip_inputs(toy_bundle):
    bundle = cmalign.ClipBundle(
        toy_bundle.model, toy_bundle.processor, "mine", torch.device("cpu")
    )
    assert bundle.family == "clip" and bundle.inputs.images == toy_bundle.inputs.images
    assert bundle.context_length == 32


def _offsets(photo, side=224):
    w, h = load_rgb_images([photo])[0].size
    short, long = min(w, h), max(w, h)
    margin = int(side * long / short) - side
    return int(round(margin / 2)), margin // 2


def test_centre_crop_rounds_like_torchvision(vitb32_tiny, photos):
    """Where OpenAI's round and transformers' floor agree the pixels are identical;
    where they differ ours are transformers' shifted by one pixel."""
    ours = cmalign.embed.preprocess_images(vitb32_tiny, photos.images)
    hf = vitb32_tiny.processor.image_processor(
        images=load_rgb_images(photos.images), return_tensors="pt"
    )["pixel_values"]
    shifted = 0
    for i, photo in enumerate(photos.images):
        rounded, floored = _offsets(photo)
        w, h = load_rgb_images([photo])[0].size
        axis = -1 if w > h else -2  # the long side is the cropped one
        if rounded == floored:
            assert (ours[i] - hf[i]).abs().max() < 1e-5, photo
        else:
            shifted += 1
            a = ours[i].narrow(axis, 0, 223)
            b = hf[i].narrow(axis, 1, 223)
            assert (a - b).abs().max() < 1e-5, photo
    assert shifted == sum(r != f for r, f in map(_offsets, photos.images)) > 0
    print(f"{shifted} of {len(photos.images)} photos are cropped one pixel differently")


def test_cosine_between_the_two_crop_paths(vitb32_tiny, photos, family_cache):
    floor = cmalign.load_clip(
        standin.REPO_ID,
        device="cpu",
        cache_dir=family_cache,
        preprocessing="transformers",
    )
    ours = cmalign.embed_images(vitb32_tiny, photos.images, progress=False)
    theirs = cmalign.embed_images(floor, photos.images, progress=False)
    cosine = (ours * theirs).sum(1)
    same = torch.tensor([r == f for r, f in map(_offsets, photos.images)])
    print(
        f"cosine reference vs transformers crop: min {cosine.min():.6f}, "
        f"shifted photos {cosine[~same].tolist()}"
    )
    assert torch.all(cosine[same] > 1 - 1e-5)
    assert cache.model_key(floor) != cache.model_key(vitb32_tiny)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("the cat can\u2019t see", "the cat can't see"),
        ("fish &amp;amp; chips", "fish & chips"),
        ("a \ufb01ne \ufb02ower", "a fine flower"),
        ("\uff28\uff45\uff4c\uff4c\uff4f", "hello"),
        ("caf\u00c3\u00a9 au lait", "caf\u00e9 au lait"),
        ("  two\t\n dogs\u00a0 ", "two dogs"),
    ],
)
def test_openai_cleaning(raw, clean):
    assert clean_text(raw, cleaning="openai") == clean
    assert clean_text(raw, cleaning="none") == raw


def test_cleaning_switch_changes_tokens_of_web_text(family_cache, vitb32_tiny):
    raw = cmalign.load_clip(
        standin.REPO_ID, device="cpu", cache_dir=family_cache, cleaning="none"
    )
    text = ["the cat can\u2019t find it &amp; more"]
    cleaned_ids = embed.tokenize(vitb32_tiny, text)["input_ids"]
    raw_ids = embed.tokenize(raw, text)["input_ids"]
    assert cleaned_ids.tolist() != raw_ids.tolist()
    assert (
        cleaned_ids.tolist()
        == embed.tokenize(raw, ["the cat can't find it & more"])["input_ids"].tolist()
    )
    assert cache.model_key(raw) != cache.model_key(vitb32_tiny)


def test_truncation_warning_carries_its_data(toy_bundle):
    long = " ".join(["a red circle"] * 20)
    with pytest.warns(TruncationWarning) as caught:
        cmalign.embed_texts(toy_bundle, [long, "a cat", long], progress=False)
    warning = caught[0].message
    assert (warning.count, warning.indices, warning.limit) == (2, [0, 2], 32)


def test_text_cache_reuses_checks_and_rebuilds(toy_bundle, tmp_path, monkeypatch):
    texts = ["a red circle", "a blue square", "a red circle"]
    plain = cmalign.embed_texts(toy_bundle, texts, progress=False)
    calls = {"texts": 0}
    real = embed.text_features

    def counting(model, **tokens):
        calls["texts"] += len(tokens["input_ids"])
        return real(model, **tokens)

    monkeypatch.setattr(embed, "text_features", counting)
    first = cmalign.embed_texts(toy_bundle, texts, progress=False, cache_dir=tmp_path)
    assert calls["texts"] == 2 and torch.allclose(first, plain, atol=1e-6)
    again = cmalign.embed_texts(toy_bundle, texts, progress=False, cache_dir=tmp_path)
    assert calls["texts"] == 2 and torch.equal(first, again)  # all hits
    folder = tmp_path / cache.model_key(toy_bundle) / "texts"
    np.save(folder / f"{cache.text_hash('a blue square')}.npy", np.zeros(3, np.float32))
    with pytest.warns(UserWarning, match="corrupt cache entry"):
        rebuilt = cmalign.embed_texts(
            toy_bundle, texts, progress=False, cache_dir=tmp_path
        )
    assert calls["texts"] == 3 and torch.allclose(rebuilt, plain, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cmalign.embed_texts(toy_bundle, texts, progress=False, cache_dir=tmp_path)


def test_model_key_includes_family_cleaning_and_preprocessing(toy_bundle):
    keys = {
        cache.model_key(toy_bundle),
        cache.model_key(cmalign.load_clip("toy", device="cpu", cleaning="none")),
        cache.model_key(
            cmalign.load_clip("toy", device="cpu", preprocessing="transformers")
        ),
    }
    assert len(keys) == 3
    assert toy_bundle.identity()["family"] == "clip"


def test_image_pipeline_squash_and_errors():
    pipeline = ImagePipeline(size=(8, 6), mean=(0.5,) * 3, std=(0.5,) * 3)
    pixels = pipeline(load_rgb_images([np.full((20, 30, 3), 255, np.uint8)]))
    assert pixels.shape == (1, 3, 8, 6) and torch.allclose(
        pixels, torch.ones_like(pixels)
    )
    with pytest.raises(ValueError, match="crop_offset"):
        ImagePipeline(size=(8, 8), mean=(0,) * 3, std=(1,) * 3, crop_offset="ceil")


def test_missing_ftfy_names_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ftfy", None)  # import ftfy now fails
    with pytest.raises(ImportError, match="pip install ftfy") as err:
        clean_text("a cat", cleaning="openai")
    assert "cleaning='none'" in str(err.value) and "\n" not in str(err.value)
    assert clean_text("A cat", cleaning="none") == "A cat"


@pytest.mark.parametrize("repo_id", [standin.REPO_ID, standin.SIGLIP_REPO_ID,
                                     "hf-hub:" + standin.OPEN_CLIP_REPO_ID])
def test_a_cached_model_loads_without_asking_the_hub(repo_id, family_cache, monkeypatch):
    """Offline, a cached model must not wait on the hub: transformers 4.57's
    AutoProcessor drops local_files_only and retried a blocked connection for
    minutes (make test-compat caught it). Any request for file metadata fails here."""
    import huggingface_hub.file_download as download

    asked = []

    def refuse(url, *args, **kwargs):
        asked.append(url)
        raise AssertionError(f"asked the hub for {url}")

    monkeypatch.setattr(download, "get_hf_file_metadata", refuse)
    bundle = cmalign.load_clip(repo_id, device="cpu", cache_dir=family_cache)
    assert bundle.model is not None
    assert asked == [], asked
