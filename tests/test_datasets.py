"""Benchmark formats on disk (Karpathy splits, COCO captions) and CLIP_benchmark's recall."""

import json

import pytest
import torch

from cmalign.evaluate.clip_benchmark import clip_benchmark_recall
from cmalign.evaluate.formats import load_coco_captions, load_karpathy
from cmalign.metrics import ranks, retrieval_metrics
from cmalign.toy.world import make_dataset
from tests.conftest import random_unit


@pytest.fixture
def karpathy(tmp_path):
    """A Karpathy-format split file over toy images: 4 test images (2 under a
    filepath, 2 in the usual folder), 1 val image, 2 captions each."""
    data = make_dataset(5, seed=2, captions_per_image=2)
    (tmp_path / "flickr30k-images").mkdir()
    (tmp_path / "sub").mkdir()
    entries = []
    for i, image in enumerate(data.images):
        folder = "sub" if i < 2 else "flickr30k-images"
        image.save(tmp_path / folder / f"{i}.png")
        entry = {
            "filename": f"{i}.png",
            "split": "val" if i == 4 else "test",
            "sentences": [{"raw": c} for c in data.captions[2 * i : 2 * i + 2]],
        }
        if folder == "sub":
            entry["filepath"] = "sub"
        entries.append(entry)
    path = tmp_path / "dataset_flickr30k.json"
    path.write_text(json.dumps({"images": entries, "dataset": "flickr30k"}))
    return path, data


def test_karpathy_split_loads_in_file_order(karpathy):
    path, data = karpathy
    test = load_karpathy(path, split="test")
    assert [p.name for p in test.images] == ["0.png", "1.png", "2.png", "3.png"]
    assert test.captions == data.captions[:8]
    assert test.text_to_image == [0, 0, 1, 1, 2, 2, 3, 3]
    assert len(load_karpathy(path, split="val").images) == 1


def test_karpathy_metrics_equal_the_in_memory_ones(karpathy, toy_bundle):
    import cmalign

    path, data = karpathy
    test = load_karpathy(path, split="test")
    from_disk = retrieval_metrics(
        cmalign.embed_images(toy_bundle, test.images, progress=False),
        cmalign.embed_texts(toy_bundle, test.captions, progress=False),
        test.text_to_image,
    )
    in_memory = retrieval_metrics(
        cmalign.embed_images(toy_bundle, data.images[:4], progress=False),
        cmalign.embed_texts(toy_bundle, data.captions[:8], progress=False),
        data.text_to_image[:8],
    )
    assert from_disk == pytest.approx(in_memory, abs=1e-6)  # PNG is lossless


def test_karpathy_errors_name_file_and_entry(karpathy, tmp_path):
    path, _ = karpathy
    with pytest.raises(
        ValueError, match=r"split 'restval' is not in .*dataset_flickr30k"
    ):
        load_karpathy(path, split="restval")
    (tmp_path / "sub" / "1.png").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"images\[1\]: image '1.png' not found"
    ):
        load_karpathy(path)
    data = json.loads(path.read_text())
    data["images"][0]["sentences"] = []
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"images\[0\] \('0.png'\) has no captions"):
        load_karpathy(path)
    coco_like = tmp_path / "captions_val2017.json"
    coco_like.write_text(json.dumps({"annotations": [], "info": {}}))
    with pytest.raises(ValueError, match="use load_coco_captions"):
        load_karpathy(coco_like)


def test_coco_captions_format(tmp_path):
    data = make_dataset(3, seed=4, captions_per_image=2)
    images, annotations = [], []
    for i, image in enumerate(data.images):
        image.save(tmp_path / f"{i:012d}.png")
        images.append({"id": 100 + i, "file_name": f"{i:012d}.png"})
        for j in range(2):
            annotations.append(
                {
                    "id": 10 * i + j,
                    "image_id": 100 + i,
                    "caption": data.captions[2 * i + j],
                }
            )
    path = tmp_path / "captions_val2017.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations[::-1]}))
    coco = load_coco_captions(path)
    assert len(coco.images) == 3 and sorted(coco.captions) == sorted(data.captions)
    assert all(
        data.captions.index(c) // 2 == i
        for c, i in zip(coco.captions, coco.text_to_image)
    )
    path.write_text(
        json.dumps({"images": images, "annotations": [{"image_id": 7, "caption": "x"}]})
    )
    with pytest.raises(ValueError, match=r"annotations\[0\]: unknown image_id 7"):
        load_coco_captions(path)


def _clip_benchmark_recall_at_k(scores, positive_pairs, k):
    """CLIP_benchmark's recall_at_k (zeroshot_retrieval.py), as published."""
    nb_texts, nb_images = scores.shape
    topk_indices = torch.topk(scores, k, dim=1)[1]
    nb_positive = positive_pairs.sum(dim=1)
    topk_indices_onehot = torch.nn.functional.one_hot(
        topk_indices, num_classes=nb_images
    )
    positive_pairs_reshaped = positive_pairs.view(nb_texts, 1, nb_images)
    nb_true_positive = (topk_indices_onehot * positive_pairs_reshaped).sum(dim=(1, 2))
    return nb_true_positive / nb_positive


@pytest.mark.parametrize("duplicates", [False, True])
def test_clip_benchmark_keys_equal_its_own_computation(duplicates, generator):
    image_emb = random_unit(20, 8, generator)
    text_emb = random_unit(60, 8, generator)
    text_to_image = [t // 3 for t in range(60)]
    if duplicates:  # verbatim duplicate captions and a duplicated image, as in COCO
        text_emb[5] = text_emb[4]
        text_emb[30] = text_emb[2]
        image_emb[7] = image_emb[6]
    ours = clip_benchmark_recall(image_emb, text_emb, text_to_image)
    scores = text_emb @ image_emb.T
    positives = torch.zeros_like(scores, dtype=torch.bool)
    positives[torch.arange(60), torch.tensor(text_to_image)] = True
    for k in (1, 5, 10):
        t2i = (
            (_clip_benchmark_recall_at_k(scores, positives, k) > 0)
            .float()
            .mean()
            .item()
        )
        i2t = (
            (_clip_benchmark_recall_at_k(scores.T, positives.T, k) > 0)
            .float()
            .mean()
            .item()
        )
        assert ours[f"image_retrieval_recall@{k}"] == pytest.approx(t2i)
        assert ours[f"text_retrieval_recall@{k}"] == pytest.approx(i2t)


def test_ties_separate_the_two_protocols():
    # Images 0 and 1 are identical; caption 0 belongs to image 1. torch.topk may
    # put either copy first (CLIP_benchmark counts the hit by that order); the
    # strict protocol counts the tie with the irrelevant copy against the query.
    image_emb = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    text_emb = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    relevance = torch.tensor([[False, True, False], [False, False, True]])
    strict_ranks = ranks(text_emb @ image_emb.T, relevance)
    assert strict_ranks.tolist() == [2, 1]  # strict text->image R@1 = 0.5
    both = clip_benchmark_recall(image_emb, text_emb, [1, 2], ks=(1, 2))
    assert both["image_retrieval_recall@2"] == 1.0
    assert both["image_retrieval_recall@1"] in (0.5, 1.0)  # depends on topk's order
    # without the duplicate the two protocols agree
    without = retrieval_metrics(image_emb[1:], text_emb, [0, 1])
    agree = clip_benchmark_recall(image_emb[1:], text_emb, [0, 1], ks=(1,))
    assert agree["image_retrieval_recall@1"] == without["text_to_image_R@1"] == 1.0
