"""Write toy-world data in the formats benchmarks use on disk.

So that the benchmark command (``python -m cmalign.evaluate``) and its
loaders can be run and tested without Flickr30k, COCO or ImageNet: a
Karpathy split file (``dataset_flickr30k.json`` layout), COCO caption
annotations (``captions_val2017.json`` layout), a ``captions.csv`` folder, and
an ImageFolder of single-object scenes by shape or colour. The toy world
repeats captions verbatim ("a red circle"), like COCO and Flickr30k do, so
the tie-breaking difference between protocols shows up here too.
Taught in notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .world import make_dataset


def write_karpathy(
    root: str | Path,
    *,
    n: int = 100,
    seed: int = 0,
    captions_per_image: int = 5,
    name: str = "dataset_flickr30k.json",
    image_folder: str = "flickr30k-images",
    with_filepath: bool = False,
) -> Path:
    """Write ``n`` test images and a Karpathy split file naming them; returns the file.

    Images go to ``root/<image_folder>/<k>.png``; entries carry ``filepath``
    only when ``with_filepath`` (as in ``dataset_coco.json``).
    """
    root = Path(root)
    data = make_dataset(
        n, seed=seed, split="test", captions_per_image=captions_per_image
    )
    (root / image_folder).mkdir(parents=True, exist_ok=True)
    entries = []
    for k, image in enumerate(data.images):
        image.save(root / image_folder / f"{k}.png")
        sentences = data.captions[k * captions_per_image : (k + 1) * captions_per_image]
        entry = {
            "filename": f"{k}.png",
            "imgid": k,
            "split": "test",
            "sentences": [{"raw": s, "tokens": s.split()} for s in sentences],
        }
        if with_filepath:
            entry["filepath"] = image_folder
        entries.append(entry)
    path = root / name
    path.write_text(json.dumps({"dataset": "toy", "images": entries}))
    return path


def write_coco_captions(
    root: str | Path, *, n: int = 100, seed: int = 0, captions_per_image: int = 5
) -> Path:
    """Write ``n`` images to ``root/val2017`` and ``root/captions_val2017.json``."""
    root = Path(root)
    data = make_dataset(
        n, seed=seed, split="test", captions_per_image=captions_per_image
    )
    (root / "val2017").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for k, image in enumerate(data.images):
        image.save(root / "val2017" / f"{k:012d}.png")
        images.append({"id": 1000 + k, "file_name": f"{k:012d}.png"})
    for t, (caption, k) in enumerate(zip(data.captions, data.text_to_image)):
        annotations.append({"id": t, "image_id": 1000 + k, "caption": caption})
    path = root / "captions_val2017.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def write_caption_folder(root: str | Path, *, n: int = 100, seed: int = 0) -> Path:
    """Write ``n`` images and a ``captions.csv`` (image,caption) into ``root``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data = make_dataset(n, seed=seed, split="test")
    with (root / "captions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "caption"])
        for k, (image, caption) in enumerate(zip(data.images, data.captions)):
            image.save(root / f"{k}.png")
            writer.writerow([f"{k}.png", caption])
    return root / "captions.csv"


def write_image_folder(
    root: str | Path, *, n: int = 200, seed: int = 0, key: str = "shape"
) -> Path:
    """Write the single-object scenes of ``n`` test images as ``root/<class>/<k>.png``."""
    root = Path(root)
    data = make_dataset(n, seed=seed, split="test")
    images, labels, names, _ = data.zero_shot_task(key)
    for k, (image, label) in enumerate(zip(images, labels)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        image.save(folder / f"{k}.png")
    return root
