"""The benchmark command on toy-world fixtures written in each on-disk format.

Its numbers must equal the in-memory metrics on the same embeddings: the
strict keys ``retrieval_metrics``, the CLIP_benchmark keys CLIP_benchmark's
own recall (duplicate captions included: the toy world repeats captions).
"""

import json

import pytest
import torch

from cmalign.embed import embed_images, embed_texts
from cmalign.evaluate import PUBLISHED, load_retrieval_data, main
from cmalign.evaluate.clip_benchmark import clip_benchmark_zeroshot
from cmalign.metrics import retrieval_metrics
from cmalign.toy.export import (
    write_caption_folder,
    write_coco_captions,
    write_image_folder,
    write_karpathy,
)
from tests.test_datasets import _clip_benchmark_recall_at_k


def _reference(bundle, data):
    image_emb = embed_images(bundle, [str(p) for p in data.images], progress=False)
    text_emb = embed_texts(bundle, data.captions, progress=False)
    strict = retrieval_metrics(image_emb, text_emb, data.text_to_image)
    scores = text_emb @ image_emb.T
    positives = torch.zeros_like(scores, dtype=torch.bool)
    positives[torch.arange(len(scores)), torch.tensor(data.text_to_image)] = True
    cb = {}
    for k in (1, 5, 10):
        cb[f"image_retrieval_recall@{k}"] = float(
            (_clip_benchmark_recall_at_k(scores, positives, k) > 0).float().mean()
        )
        cb[f"text_retrieval_recall@{k}"] = float(
            (_clip_benchmark_recall_at_k(scores.T, positives.T, k) > 0).float().mean()
        )
    return strict, cb


@pytest.mark.parametrize(
    "layout", ["flickr30k", "coco-karpathy", "coco-captions", "captions"]
)
def test_retrieval_command_equals_in_memory_metrics(layout, tmp_path, toy_bundle):
    root = tmp_path / "data"
    if layout == "flickr30k":
        write_karpathy(root, n=40, seed=3)
        args, dataset = [], "flickr30k"
    elif layout == "coco-karpathy":
        write_karpathy(
            root,
            n=40,
            seed=3,
            name="dataset_coco.json",
            image_folder="val2014",
            with_filepath=True,
        )
        args, dataset = [], "coco"
    elif layout == "coco-captions":
        path = write_coco_captions(root, n=40, seed=3)
        args, dataset = ["--annotations", str(path)], "coco"
    else:
        write_caption_folder(root, n=40, seed=3)
        args, dataset = [], "captions"
    out = tmp_path / "r.json"
    result = main(
        [
            "retrieval",
            "--model",
            "toy",
            "--dataset",
            dataset,
            "--root",
            str(root),
            "--out",
            str(out),
            "--workers",
            "0",
            "--device",
            "cpu",
            "--report",
            str(tmp_path / "report"),
            *args,
        ]
    )
    data = load_retrieval_data(dataset, root, "test", args[1] if args else None)
    assert len(data.captions) > len(set(data.captions)) or layout == "captions"
    strict, cb = _reference(toy_bundle, data)
    saved = json.loads(out.read_text())
    for key, value in {**strict, **cb}.items():
        assert saved["metrics"][key] == pytest.approx(value, abs=1e-6), key
    assert saved["metrics"]["text_to_image_tied_queries"] >= 0
    assert saved["task"] == "zeroshot_retrieval" and saved["published"] == {}
    page = (tmp_path / "report" / "index.html").read_text()
    assert "Worst text&rarr;image queries" in page and "thumbs/" in page
    assert result["n_images"] == 40


def test_published_pair_is_shown_beside_the_measurement():
    assert PUBLISHED[("openai/clip-vit-base-patch32", "flickr30k")][
        "image_retrieval_recall@1"
    ] == pytest.approx(0.588)


def test_zeroshot_command(tmp_path, toy_bundle, capsys):
    root = write_image_folder(tmp_path / "shapes", n=80, seed=2)
    names = tmp_path / "names.txt"
    names.write_text("round thing\nplus sign\nbox\nstar\ntriangle\n")
    result = main(
        [
            "zeroshot",
            "--model",
            "toy",
            "--root",
            str(root),
            "--templates",
            "simple",
            "--classnames",
            str(names),
            "--device",
            "cpu",
            "--report",
            str(tmp_path / "z"),
            "--workers",
            "0",
        ]
    )
    assert result["classnames"][0] == "round thing" and result["n_templates"] == 7
    assert (tmp_path / "z" / "confusion.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "acc1" in printed and "plus sign" in printed
    assert 0.0 <= result["metrics"]["acc1"] <= result["metrics"]["acc5"] <= 1.0


def test_clip_benchmark_zeroshot_by_hand():
    logits = torch.tensor(
        [[3.0, 2.0, 1.0], [0.0, 1.0, 2.0], [1.0, 3.0, 2.0], [0.0, 0.0, 1.0]]
    )
    labels = [0, 1, 1, 2]  # predictions 0, 2, 1, 2
    m = clip_benchmark_zeroshot(logits, labels, ks=(1, 2))
    assert m["acc1"] == pytest.approx(0.75)
    assert m["acc2"] == pytest.approx(1.0)  # image 1's label is its second choice
    assert m["mean_per_class_recall"] == pytest.approx((1 + 0.5 + 1) / 3)
    with pytest.raises(ValueError, match="labels must be in"):
        clip_benchmark_zeroshot(logits, [0, 1, 1, 3])


def test_bad_inputs_are_named(tmp_path, capsys):
    root = tmp_path / "f"
    write_karpathy(root, n=3)
    (root / "flickr30k-images" / "1.png").unlink()
    flickr = [
        "retrieval",
        "--model",
        "toy",
        "--dataset",
        "flickr30k",
        "--root",
        str(root),
    ]
    with pytest.raises(SystemExit, match=r"images\[1\]: image '1.png' not found"):
        main(flickr)
    with pytest.raises(SystemExit, match="split 'val' is not in"):
        main([*flickr, "--split", "val"])
    with pytest.raises(SystemExit, match="dataset_coco.json not found"):
        main(["retrieval", "--model", "toy", "--dataset", "coco", "--root", str(root)])
    bad = tmp_path / "t.txt"
    bad.write_text("a photo of a {}\nno placeholder here\n")
    write_image_folder(tmp_path / "if", n=20)
    with pytest.raises(SystemExit, match="line 2: 'no placeholder here'"):
        main(
            [
                "zeroshot",
                "--model",
                "toy",
                "--root",
                str(tmp_path / "if"),
                "--templates",
                str(bad),
            ]
        )
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(SystemExit, match="class folder .*cls has no images"):
        main(["zeroshot", "--model", "toy", "--root", str(tmp_path / "empty")])
