"""Toy-world data in the formats people hold at scale: tar shards and Parquet files.

So that ``python -m cmalign.scale embed`` and ``python -m cmalign.evaluate
... --dataset webdataset`` can be run and tested without CC3M or LAION:
:func:`write_toy_shards` writes generated scenes (:func:`cmalign.toy.world.make_dataset`)
as img2dataset tar shards (``00000.tar`` holding ``000000000.png``,
``.txt``, ``.json``) or img2dataset Parquet files (``key``, ``jpg``,
``txt``), optionally with samples that are broken on purpose;
:func:`write_clip_benchmark_shards` writes CLIP_benchmark's webdataset
layout (``test/0.tar``, ``test/nshards.txt``, ``classnames.txt``,
``zeroshot_classification_templates.txt``, ``dataset_type.txt``).
Used by tests/test_scale*.py and benchmarks/scale.py.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from PIL import Image

from ..toy.world import make_dataset

#: How the broken samples of ``corrupt=`` are broken, in turn.
BROKEN = ("truncated image", "no caption", "no image")


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format={"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}[fmt])
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def write_toy_shards(
    root: str | Path,
    *,
    n: int = 64,
    per_shard: int = 16,
    format: str = "webdataset",
    image_format: str = "png",
    corrupt: int = 0,
    seed: int = 0,
    images: list | None = None,
    captions: list[str] | None = None,
) -> list[Path]:
    """Write ``n`` toy scenes as shards of ``per_shard``; returns the shard files.

    Parameters
    ----------
    format : "webdataset" (``NNNNN.tar``) or "parquet" (``NNNNN.parquet``)
    image_format : "png" (lossless), "jpg" or "webp"
    corrupt : int
        The last ``corrupt`` samples are broken, in turn, as :data:`BROKEN` says
        (a truncated image file, no caption, no image at all).
    images, captions : optional
        Write these instead of generating ``n`` scenes.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if images is None:
        data = make_dataset(n, seed=seed, split="test")
        images, captions = data.images, data.captions
    paths = []
    for s, start in enumerate(range(0, len(images), per_shard)):
        rows = []
        for k in range(start, min(start + per_shard, len(images))):
            payload = _encode(images[k], image_format)
            caption = captions[k]
            broken = k - (len(images) - corrupt)
            if broken >= 0:
                kind = BROKEN[broken % len(BROKEN)]
                payload = payload[: len(payload) // 3] if kind == "truncated image" else payload
                caption = None if kind == "no caption" else caption
                payload = None if kind == "no image" else payload
            rows.append((f"{k:09d}", payload, caption))
        path = root / f"{s:05d}.{'tar' if format == 'webdataset' else 'parquet'}"
        if format == "webdataset":
            with tarfile.open(path, "w") as tar:
                for key, payload, caption in rows:
                    if payload is not None:
                        _add(tar, f"{key}.{image_format}", payload)
                    if caption is not None:
                        _add(tar, f"{key}.txt", caption.encode())
                    _add(tar, f"{key}.json", json.dumps({"key": key, "caption": caption}).encode())
        elif format == "parquet":
            from .extra import require

            pa, pq = require("pyarrow"), require("pyarrow.parquet")
            table = pa.table({
                "key": [r[0] for r in rows],
                "jpg": pa.array([r[1] for r in rows], type=pa.binary()),
                "txt": pa.array([r[2] for r in rows], type=pa.string()),
            })
            pq.write_table(table, path)
        else:
            raise ValueError(f"format must be 'webdataset' or 'parquet', got {format!r}")
        paths.append(path)
    return paths


def write_clip_benchmark_shards(
    root: str | Path,
    *,
    task: str = "retrieval",
    n: int = 48,
    per_shard: int = 16,
    split: str = "test",
    seed: int = 0,
    captions_per_image: int = 2,
) -> Path:
    """Write a toy benchmark in CLIP_benchmark's webdataset layout; returns ``root``.

    ``task="retrieval"``: each sample is ``sNNNNNNN.png`` and ``.txt`` with one
    caption per line. ``task="classification"``: single-object scenes with a
    ``.cls`` label (the shape), ``classnames.txt`` and templates with ``{c}``.
    """
    root = Path(root)
    (root / split).mkdir(parents=True, exist_ok=True)
    per_image = captions_per_image if task == "retrieval" else 1
    data = make_dataset(n, seed=seed, split="test", captions_per_image=per_image)
    if task == "retrieval":
        samples = [
            {"png": _encode(image, "png"),
             "txt": "\n".join(data.captions[k * per_image : (k + 1) * per_image]).encode()}
            for k, image in enumerate(data.images)
        ]
    elif task == "classification":
        images, labels, names, _ = data.zero_shot_task("shape")
        samples = [{"png": _encode(im, "png"), "cls": str(label).encode()}
                   for im, label in zip(images, labels)]
        (root / "classnames.txt").write_text("\n".join(names) + "\n")
        (root / "zeroshot_classification_templates.txt").write_text(
            "a photo of a {c}.\na {c} on a dark background.\n")
    else:
        raise ValueError(f"task must be 'retrieval' or 'classification', got {task!r}")
    shards = 0
    for shards, start in enumerate(range(0, len(samples), per_shard), start=1):
        with tarfile.open(root / split / f"{shards - 1}.tar", "w") as tar:
            for k in range(start, min(start + per_shard, len(samples))):
                for ext, payload in samples[k].items():
                    _add(tar, f"s{k:07d}.{ext}", payload)
    (root / split / "nshards.txt").write_text(f"{shards}\n")
    (root / "dataset_type.txt").write_text(
        "retrieval\n" if task == "retrieval" else "classification\n")
    return root
