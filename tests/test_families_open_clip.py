"""open_clip checkpoints without open_clip: parity with open_clip itself, and the limits.

open_clip's own code runs in a process of its own (tests/open_clip_reference.py,
torchvision stubbed), installed into .cache/ by the ``open_clip_site`` fixture;
the parity tests skip when it cannot be installed.
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

import cmalign
from cmalign import models, standin
from cmalign.checkpoint import RefusedWeightsError
from cmalign.families import open_clip as oc
from cmalign.inputs import TextInputs, tokenize
from tests.web_captions import web_captions

REFERENCE = Path(__file__).with_name("open_clip_reference.py")


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """Two tiny open_clip checkpoints: GELU in safetensors, QuickGELU in a .bin."""
    root = tmp_path_factory.mktemp("open-clip")
    return [
        standin.write_snapshot(root / "gelu", family="open_clip", size="tiny", seed=3),
        standin.write_snapshot(
            root / "quickgelu",
            family="open_clip",
            size="tiny",
            layout="bin",
            quick_gelu=True,
            seed=4,
        ),
    ]


@pytest.fixture(scope="module")
def reference(open_clip_site, snapshots, photos, tmp_path_factory):
    """open_clip's token ids of the web captions and its encode_image / encode_text
    of both snapshots on the photos, computed by open_clip in its own process."""
    folder = tmp_path_factory.mktemp("open-clip-io")
    bundle = cmalign.load_clip(str(snapshots[0]), device="cpu")
    pixels = cmalign.embed.preprocess_images(bundle, photos.images)
    job = {"texts": web_captions(), "folders": [str(s) for s in snapshots]}
    torch.save({**job, "pixels": pixels}, folder / "in.pt")
    done = subprocess.run(
        [
            sys.executable,
            str(REFERENCE),
            str(open_clip_site),
            str(folder / "in.pt"),
            str(folder / "out.pt"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return torch.load(folder / "out.pt")


def _ids_of(tokens: dict, i: int) -> list[int]:
    return tokens["input_ids"][i, : int(tokens["attention_mask"][i].sum())].tolist()


def _open_clip_ids(row: torch.Tensor) -> list[int]:
    end = int((row == 49407).nonzero()[0]) + 1  # up to and including the first EOT
    return row[:end].tolist()


@pytest.mark.slow
def test_token_ids_equal_open_clip_on_web_captions(reference, open_clip_bundle):
    texts = web_captions()
    agreement = {}
    for cleaning in ("openai", "none"):
        spec = TextInputs(
            open_clip_bundle.inputs.texts.tokenizer, 77, cleaning=cleaning
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the > 77-token captions warn
            tokens = tokenize(spec, texts)
        same = [
            _ids_of(tokens, i) == _open_clip_ids(reference["ids"][i])
            for i in range(len(texts))
        ]
        agreement[cleaning] = sum(same) / len(same)
    print(
        f"token-id agreement with open_clip on {len(texts)} web captions: {agreement}"
    )
    assert agreement["openai"] == 1.0
    assert agreement["none"] < 0.9  # transformers' raw tokenisation differs on web text
    long = [
        i for i, t in enumerate(texts) if len(_open_clip_ids(reference["ids"][i])) == 77
    ]
    assert long and all(reference["ids"][i][76] == 49407 for i in long)  # cut, EOT kept


@pytest.mark.slow
def test_embeddings_equal_open_clip_encode_image_and_text(reference, snapshots, photos):
    texts = web_captions()
    for snapshot, theirs in zip(snapshots, reference["models"]):
        bundle = cmalign.load_clip(str(snapshot), device="cpu")
        assert bundle.family == "open_clip"
        image_emb = cmalign.embed_images(bundle, photos.images, progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            text_emb = cmalign.embed_texts(bundle, texts, progress=False)
        their_image = torch.nn.functional.normalize(theirs["image"], dim=-1)
        their_text = torch.nn.functional.normalize(theirs["text"], dim=-1)
        image_delta = (image_emb - their_image).abs().max().item()
        text_delta = (text_emb - their_text).abs().max().item()
        print(
            f"{snapshot.name}: max |delta| image {image_delta:.2e}, text {text_delta:.2e}"
        )
        assert image_delta < 1e-5 and text_delta < 1e-5
        assert torch.isclose(
            bundle.model.logit_scale, theirs["logit_scale"].reshape(())
        )
        # the comparison can fail: the rows differ from each other
        assert torch.cdist(image_emb, image_emb).max() > 1e-3
    # and it is sensitive to the activation: QuickGELU weights read as GELU differ
    config = oc.read_config(snapshots[1])
    config["model_cfg"].pop("quick_gelu")
    wrong = cmalign.models.ClipBundle(
        _model_from(snapshots[1], config),
        bundle.processor,
        "wrong",
        torch.device("cpu"),
    )
    wrong_emb = cmalign.embed_images(wrong, photos.images, progress=False)
    their_image = torch.nn.functional.normalize(reference["models"][1]["image"], dim=-1)
    assert (wrong_emb - their_image).abs().max() > 1e-4


def _model_from(folder, config):
    """A CLIPModel built from ``config`` holding ``folder``'s weights."""
    from transformers import CLIPModel

    state, _ = oc.read_weights(folder)
    clip = oc.clip_config(config["model_cfg"])
    model = CLIPModel(clip)
    model.load_state_dict(oc.to_clip_state_dict(state, clip))
    return model.eval()


def test_hub_repo_local_folder_and_save_clip_agree(
    open_clip_bundle, family_cache, photos, tmp_path
):
    snapshot = standin.snapshot_folder(family_cache, standin.OPEN_CLIP_REPO_ID)
    assert {p.name for p in snapshot.iterdir()} == {
        "open_clip_config.json",
        "open_clip_model.safetensors",
    }  # an open_clip-only repo: no config.json, no tokenizer files
    folder = cmalign.load_clip(str(snapshot), device="cpu")
    plain_id = cmalign.load_clip(
        standin.OPEN_CLIP_REPO_ID, device="cpu", cache_dir=family_cache
    )
    saved = cmalign.save_clip(
        open_clip_bundle.model, open_clip_bundle.processor, tmp_path / "hf"
    )
    assert (saved / "config.json").is_file() and (saved / "vocab.json").is_file()
    as_hf = cmalign.load_clip(str(saved), device="cpu")
    assert as_hf.family == "clip" and open_clip_bundle.family == "open_clip"
    texts = ["a photo of a cat", "two dogs on the beach"]
    reference = cmalign.embed_images(
        open_clip_bundle, photos.images[:4], progress=False
    )
    ref_text = cmalign.embed_texts(open_clip_bundle, texts, progress=False)
    for bundle in (folder, plain_id, as_hf):
        assert torch.allclose(
            cmalign.embed_images(bundle, photos.images[:4], progress=False),
            reference,
            atol=1e-6,
        )
        assert torch.allclose(
            cmalign.embed_texts(bundle, texts, progress=False), ref_text, atol=1e-6
        )
    assert open_clip_bundle.inputs.texts.cleaning == "openai"
    assert open_clip_bundle.context_length == 77


def test_bin_weights_are_read_with_weights_only_or_refused(tmp_path):
    folder = standin.write_snapshot(
        tmp_path / "bin", family="open_clip", size="tiny", layout="bin"
    )
    bundle = cmalign.load_clip(str(folder), device="cpu")
    assert bundle.weights_file == "open_clip_pytorch_model.bin"
    with pytest.raises(RefusedWeightsError, match="pickle-based"):
        cmalign.load_clip(str(folder), safetensors_only=True)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ({"vision_cfg": {"timm_model_name": "convnext_base"}}, "timm vision tower"),
        ({"vision_cfg": {"layers": [3, 4, 6, 3]}}, "ResNet"),
        ({"text_cfg": {"hf_model_name": "xlm-roberta-base"}}, "text_cfg.hf_model_name"),
        ({"text_cfg": {"hf_tokenizer_name": "bert-base-uncased"}}, "hf_tokenizer_name"),
        ({"vision_cfg": {"ls_init_value": 1e-5}}, "layer scale"),
        ({"vision_cfg": {"attentional_pool": True}}, "attentional_pool"),
        ({"vision_cfg": {"pool_type": "avg"}}, "pooling 'avg'"),
        ({"init_logit_bias": -10}, "logit bias"),
    ],
)
def test_non_standard_towers_fail_with_one_line(tmp_path, edit, named):
    folder = standin.write_snapshot(tmp_path / "m", family="open_clip", size="tiny")
    config = json.loads((folder / "open_clip_config.json").read_text())
    for key, value in edit.items():
        if isinstance(value, dict):
            config["model_cfg"][key].update(value)
        else:
            config["model_cfg"][key] = value
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    with pytest.raises(oc.UnsupportedCheckpointError, match=named) as err:
        cmalign.load_clip(str(folder))
    message = str(err.value)
    assert "\n" not in message and "standard ViT towers" in message
    assert str(folder) in message


def test_hf_hub_id_not_cached_offline_fails_fast(tmp_path, monkeypatch):
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=5.0: False)
    with pytest.raises(cmalign.HubUnavailableError, match="hf-hub:someone/missing"):
        cmalign.load_clip("hf-hub:someone/missing", cache_dir=tmp_path)


def test_state_dict_mapping_round_trips():
    config = standin.open_clip_config("tiny")
    clip = oc.clip_config(config["model_cfg"])
    from transformers import CLIPModel

    state = CLIPModel(clip).state_dict()
    back = oc.to_clip_state_dict(oc.from_clip_state_dict(state, clip), clip)
    assert set(back) == {k for k in state if not k.endswith("position_ids")}
    for key, value in back.items():
        assert torch.equal(value, state[key]), key
