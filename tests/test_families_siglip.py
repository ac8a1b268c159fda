"""SigLIP through the same path: scores equal SiglipModel's, padding to 64, lower-casing.

On the tiny offline stand-in of google/siglip-base-patch16-224 (published
configs, a locally trained sentencepiece model, random weights; see
cmalign.standin), loaded from a hub cache as the real id.
"""

import pytest
import torch

import cmalign
from cmalign.families import siglip
from cmalign.images import load_rgb_images
from cmalign.inputs import clean_text
from cmalign.losses import siglip_loss
from cmalign.utils import TruncationWarning

pytest.importorskip("sentencepiece", reason="SigLIP's tokenizer needs sentencepiece")


def _model_scores(bundle, images, texts):
    inputs = bundle.processor(
        text=texts,
        images=load_rgb_images(images),
        padding="max_length",
        return_tensors="pt",
    )
    with torch.no_grad():
        return bundle.model(**inputs)


def test_the_bundle_knows_its_family(siglip_bundle):
    bundle = siglip_bundle
    assert bundle.family == "siglip" and type(bundle.model).__name__ == "SiglipModel"
    assert bundle.context_length == 64 and bundle.image_size == 224
    assert bundle.inputs.texts.padding == "max_length"
    assert not bundle.inputs.texts.attention_mask
    assert bundle.inputs.images.shortest_edge is None  # resized to 224 x 224, no crop


def test_scores_equal_siglipmodel_logits_per_image(siglip_bundle, photos):
    bundle, images, texts = siglip_bundle, photos.images[:5], photos.captions[:7]
    image_emb = cmalign.embed_images(bundle, images, progress=False)
    text_emb = cmalign.embed_texts(bundle, texts, progress=False)
    out = _model_scores(bundle, images, texts)
    ours = bundle.logits(image_emb, text_emb)
    assert ours.shape == (5, 7)
    assert torch.allclose(ours, out.logits_per_image, atol=1e-4)
    assert ours.std() > 1e-3  # the scores differ between pairs: the check can fail
    probabilities = bundle.probabilities(image_emb, text_emb)
    assert torch.allclose(probabilities, torch.sigmoid(out.logits_per_image), atol=1e-5)
    assert not torch.allclose(probabilities.sum(1), torch.ones(5))  # no softmax


def test_pixels_equal_the_published_processor(siglip_bundle, photos):
    ours = cmalign.embed.preprocess_images(siglip_bundle, photos.images)
    theirs = siglip_bundle.processor.image_processor(
        images=load_rgb_images(photos.images), return_tensors="pt"
    )["pixel_values"]
    assert ours.shape == theirs.shape == (len(photos.images), 3, 224, 224)
    assert (ours - theirs).abs().max() < 1e-5


def test_padding_true_gives_other_embeddings(siglip_bundle, photos):
    """SigLIP pools the last position: padding to the longest caption moves it."""
    bundle, texts = siglip_bundle, photos.captions[:12]
    ours = cmalign.embed_texts(bundle, texts, progress=False)
    tokenizer = bundle.processor.tokenizer
    for padding in ("max_length", True):
        tokens = tokenizer(texts, padding=padding, return_tensors="pt")
        with torch.no_grad():
            bare = cmalign.features.text_features(bundle.model, **tokens)
        cosine = (bare * ours).sum(1)
        print(f"padding={padding!r}: min cosine to cmalign's {cosine.min():.4f}")
        if padding == "max_length":
            assert torch.allclose(bare, ours, atol=1e-5)
        else:
            assert cosine.min() < 0.99


def test_siglips_tokenizer_lower_cases_and_drops_punctuation(siglip_bundle):
    shouted, plain = cmalign.embed_texts(
        siglip_bundle, ["A PHOTO of a Cat!", "a photo of a cat"], progress=False
    )
    assert torch.allclose(shouted, plain, atol=1e-6)
    assert siglip_bundle.inputs.texts.cleaning == "none"  # its tokenizer does it


def test_a_lower_case_tokenizer_that_does_not_lower_case_is_helped():
    class GemmaLike:  # SigLIP 2's tokenizer: configured do_lower_case, not applied
        init_kwargs = {"do_lower_case": True}

    assert siglip.default_cleaning(GemmaLike()) == "lower"
    assert clean_text("A  Photo\tOF a Cat", cleaning="lower") == "a photo of a cat"


def test_captions_beyond_64_tokens_warn_with_data(siglip_bundle):
    long = " ".join(["a red car"] * 40)
    with pytest.warns(TruncationWarning) as caught:
        emb = cmalign.embed_texts(siglip_bundle, ["a dog", long], progress=False)
    warning = caught[0].message
    assert (warning.count, warning.indices, warning.limit) == (1, [1], 64)
    assert torch.isfinite(emb).all()


def test_missing_sentencepiece_names_what_to_install(family_cache, monkeypatch):
    monkeypatch.setattr(siglip, "_found", lambda module: module != "sentencepiece")
    with pytest.raises(ImportError, match="pip install sentencepiece protobuf") as err:
        cmalign.load_clip(
            "google/siglip-base-patch16-224", device="cpu", cache_dir=family_cache
        )
    assert "\n" not in str(err.value) and "missing: sentencepiece" in str(err.value)


def test_save_clip_round_trips_a_siglip(siglip_bundle, photos, tmp_path):
    folder = cmalign.save_clip(
        siglip_bundle.model, siglip_bundle.processor, tmp_path / "s"
    )
    again = cmalign.load_clip(str(folder), device="cpu")
    assert again.family == "siglip"
    texts = photos.captions[:3]
    assert torch.allclose(
        cmalign.embed_texts(again, texts, progress=False),
        cmalign.embed_texts(siglip_bundle, texts, progress=False),
        atol=1e-6,
    )


def test_siglip_loss_equals_siglipmodel_return_loss(siglip_bundle, photos):
    bundle, n = siglip_bundle, 6
    images, texts = photos.images[:n], [photos.captions[3 * i] for i in range(n)]
    inputs = bundle.processor(
        text=texts,
        images=load_rgb_images(images),
        padding="max_length",
        return_tensors="pt",
    )
    with torch.no_grad():
        theirs = bundle.model(**inputs, return_loss=True).loss
    ours = siglip_loss(
        cmalign.embed_images(bundle, images, progress=False),
        cmalign.embed_texts(bundle, texts, progress=False),
        bundle.model.logit_scale.exp().detach(),
        bundle.model.logit_bias.detach(),
    )
    assert torch.allclose(ours, theirs, atol=1e-4)
