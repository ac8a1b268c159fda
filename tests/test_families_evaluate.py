"""``python -m cmalign.evaluate`` on each family, offline, from a hub cache.

Each command runs in a fresh process with ``HF_HUB_OFFLINE=1`` and
``HF_HUB_CACHE`` pointing at the tiny stand-ins (tests/conftest.py), as a user
without network would run it; its numbers must equal the in-memory metrics
on the same model, and SigLIP's zero-shot must use SigLIP's own scores.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

import cmalign
from cmalign import standin
from cmalign.data import photos_dir
from cmalign.evaluate.clip_benchmark import clip_benchmark_zeroshot
from cmalign.evaluate.formats import load_image_folder, load_templates
from cmalign.metrics import retrieval_metrics
from cmalign.toy.export import write_image_folder

pytest.importorskip("sentencepiece", reason="SigLIP's tokenizer needs sentencepiece")


def _evaluate(args, cache, out):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    env.pop("HF_HOME", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cmalign.evaluate",
            *args,
            "--workers",
            "0",
            "--device",
            "cpu",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "bundle_fixture"),
    [
        (standin.SIGLIP_REPO_ID, "siglip_bundle"),
        ("hf-hub:" + standin.OPEN_CLIP_REPO_ID, "open_clip_bundle"),
    ],
)
def test_retrieval_command_offline(
    model, bundle_fixture, family_cache, photos, tmp_path, request
):
    result, stdout = _evaluate(
        [
            "retrieval",
            "--model",
            model,
            "--dataset",
            "captions",
            "--root",
            str(photos_dir()),
        ],
        family_cache,
        tmp_path / "r.json",
    )
    bundle = request.getfixturevalue(bundle_fixture)
    assert result["family"] == bundle.family
    expected = retrieval_metrics(
        cmalign.embed_images(bundle, [str(p) for p in photos.images], progress=False),
        cmalign.embed_texts(bundle, photos.captions, progress=False),
        photos.text_to_image,
    )
    for key in ("text_to_image_R@1", "image_to_text_R@5"):
        assert result["metrics"][key] == pytest.approx(expected[key], abs=1e-9)
    assert result["published"] == {}  # no published row for this folder


@pytest.mark.slow
def test_siglip_zeroshot_uses_its_own_scores(family_cache, siglip_bundle, tmp_path):
    root = write_image_folder(tmp_path / "shapes", n=30, seed=1)
    result, _ = _evaluate(
        [
            "zeroshot",
            "--model",
            standin.SIGLIP_REPO_ID,
            "--root",
            str(root),
            "--templates",
            "simple",
            "--cache-dir",
            str(tmp_path / "cache"),
        ],
        family_cache,
        tmp_path / "z.json",
    )
    assert result["family"] == "siglip" and "siglip's logits" in result["protocol"]
    images, labels, names = load_image_folder(root)
    classes = cmalign.class_embeddings(siglip_bundle, names, load_templates("simple"))
    image_emb = cmalign.embed_images(
        siglip_bundle, [str(p) for p in images], progress=False
    )
    logits = siglip_bundle.logits(image_emb, classes)
    assert torch.all(logits < 0)  # the bias: not cosines
    expected = clip_benchmark_zeroshot(logits, labels)
    assert result["metrics"]["acc1"] == pytest.approx(expected["acc1"])


def test_unknown_family_fails_with_one_line(tmp_path):
    from cmalign.evaluate import main

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "blip"}))
    with pytest.raises(SystemExit) as exit_:
        main(
            [
                "retrieval",
                "--model",
                str(tmp_path),
                "--dataset",
                "captions",
                "--root",
                str(photos_dir()),
                "--workers",
                "0",
            ]
        )
    message = str(exit_.value.code)
    assert message.startswith("error:") and "\n" not in message
    assert "model_type 'blip'" in message and "open_clip" in message
