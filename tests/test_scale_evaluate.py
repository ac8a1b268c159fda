"""``python -m cmalign.evaluate ... --dataset webdataset`` on CLIP_benchmark-layout toy shards."""

from __future__ import annotations

import cmalign
from cmalign.evaluate import cli
from cmalign.evaluate.clip_benchmark import (
    clip_benchmark_recall,
    clip_benchmark_zeroshot,
)
from cmalign.scale.toyshards import write_clip_benchmark_shards
from cmalign.scale.wds_benchmark import load_wds_classification, load_wds_retrieval
from cmalign.toy.world import make_dataset


def test_retrieval_shards_score_like_the_images_they_hold(tmp_path, toy_bundle):
    root = write_clip_benchmark_shards(tmp_path / "wds", n=40, per_shard=16, captions_per_image=2)
    lines = []
    data = load_wds_retrieval(root, log=lines.append)
    assert lines == [f"matched 3 shards (webdataset) for '{root / 'test' / '{0..2}.tar'}'"]
    truth = make_dataset(40, seed=0, split="test", captions_per_image=2)
    assert data.captions == truth.captions and data.text_to_image == truth.text_to_image
    result = cli.main(["retrieval", "--model", "toy", "--dataset", "webdataset", "--root", str(root),
                       "--workers", "0", "--device", "cpu"])
    image_emb = cmalign.embed_images(toy_bundle, truth.images, progress=False)
    text_emb = cmalign.embed_texts(toy_bundle, truth.captions, progress=False)
    expected = clip_benchmark_recall(image_emb, text_emb, truth.text_to_image)
    assert result["n_images"] == 40 and result["n_captions"] == 80 and result["skipped"] == []
    for name, value in expected.items():
        assert abs(result["metrics"][name] - value) < 1e-6, name


def test_classification_shards_use_their_classnames_and_templates(tmp_path, toy_bundle):
    root = write_clip_benchmark_shards(tmp_path / "wds", task="classification", n=60, per_shard=25)
    images, labels, names, templates, skipped = load_wds_classification(root, log=lambda _: None)
    assert templates == ["a photo of a {}.", "a {} on a dark background."] and skipped == []
    result = cli.main(["zeroshot", "--model", "toy", "--dataset", "webdataset", "--root", str(root),
                       "--workers", "0", "--device", "cpu"])
    assert result["n_templates"] == 2 and result["classnames"] == names
    image_emb = cmalign.embed_images(toy_bundle, list(images), progress=False)
    classes = cmalign.class_embeddings(toy_bundle, names, templates)
    expected = clip_benchmark_zeroshot(toy_bundle.logits(image_emb, classes), labels)
    for name, value in expected.items():
        assert abs(result["metrics"][name] - value) < 1e-6, name
    _, true_labels, true_names, _ = make_dataset(60, seed=0, split="test").zero_shot_task("shape")
    assert labels == true_labels and names == true_names
