"""On-disk cache of image embeddings, keyed by model and by file content.

``embed_images(bundle, paths, cache_dir=...)`` lands here. Each image file is
hashed (SHA-256 of its bytes) and its embedding stored as
``<cache_dir>/<model key>/<hash>.npy`` (plain arrays, no pickle). The model
key combines the model's name with a fingerprint of its config and weights,
so retraining or swapping a model never reuses old vectors, and an edited
image gets a new hash. An entry that cannot be read, has the wrong shape or is
not a finite unit vector is reported, recomputed and overwritten — never
silently reused. The cache sits below :mod:`cmalign.embed`: it is handed the
function that computes missing embeddings and never imports it.
Taught in notebooks/05_retrieval_evaluation.ipynb; measured by
``python -m benchmarks.run``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import torch

from .models import ClipBundle


def model_key(bundle: ClipBundle) -> str:
    """Short, filesystem-safe key: model name + hash of config and sampled weights."""
    digest = hashlib.sha256(bundle.model.config.to_json_string().encode())
    params = list(bundle.model.parameters())
    for param in (params[0], params[len(params) // 2], params[-1]):
        sample = param.detach().flatten()[: 1 << 18]  # slice first: no full-tensor copy
        digest.update(sample.float().cpu().numpy().tobytes())
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in bundle.name)[-60:]
    return f"{safe}-{digest.hexdigest()[:16]}"


def file_hash(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(entry: Path, dim: int) -> np.ndarray | None:
    """The cached vector, or None (with a warning) if the entry is unusable."""
    try:
        vector = np.load(entry, allow_pickle=False)
    except (OSError, ValueError) as err:
        problem = f"unreadable ({err})"
    else:
        norm = float(np.linalg.norm(vector)) if vector.shape == (dim,) else float("nan")
        if vector.shape == (dim,) and abs(norm - 1) < 1e-3:
            return vector
        problem = f"shape {vector.shape} / norm {norm:.4g}, expected ({dim},) / 1"
    warnings.warn(f"corrupt cache entry {entry}: {problem}; recomputing", stacklevel=4)
    return None


def _write(entry: Path, vector: np.ndarray) -> None:
    tmp = entry.with_suffix(".tmp.npy")
    np.save(tmp, vector, allow_pickle=False)
    os.replace(tmp, entry)  # atomic: a crash never leaves half a file behind


def cached_image_embeddings(
    bundle: ClipBundle,
    images: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike,
    compute: Callable[[list], Iterable[torch.Tensor]],
) -> torch.Tensor:
    """Embeddings of image files, computing only those not cached yet.

    Parameters
    ----------
    bundle : ClipBundle
    images : sequence of str or PathLike
        Image files (PIL images or arrays cannot be cached: they have no file).
    cache_dir : str or PathLike
        Root folder of the cache (created if missing).
    compute : callable
        ``compute(paths)`` yields, batch after batch and in order, the
        (batch, embed_dim) unit rows of the images not cached yet
        (``embed_images`` passes its own batched loop). Each batch is written
        as soon as it comes, so an interrupted run resumes where it stopped.

    Returns
    -------
    torch.Tensor of shape (n_images, embed_dim), float32, unit rows, in input order.
    """
    bad = [
        i for i, item in enumerate(images) if not isinstance(item, (str, os.PathLike))
    ]
    if bad:
        raise TypeError(
            f"cache_dir needs file paths; image {bad[0]} is "
            f"{type(images[bad[0]]).__name__}"
        )
    for i, item in enumerate(images):
        if not Path(item).is_file():
            raise FileNotFoundError(f"image {i} ('{item}'): file not found")
    folder = Path(cache_dir) / model_key(bundle)
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "model.json"
    if not meta.exists():
        meta.write_text(json.dumps({"name": bundle.name, "dim": bundle.embed_dim}))
    dim = bundle.embed_dim
    hashes = [file_hash(item) for item in images]
    found: dict[str, np.ndarray] = {}
    for h in set(hashes):
        entry = folder / f"{h}.npy"
        if entry.exists() and (vector := _read(entry, dim)) is not None:
            found[h] = vector
    missing = [i for i, h in enumerate(hashes) if h not in found]
    first_of: dict[str, int] = {}
    for i in missing:
        first_of.setdefault(hashes[i], i)
    if first_of:
        todo = iter(first_of.values())
        for batch in compute([images[i] for i in first_of.values()]):
            # batch first: zip stops on it without taking one more index from todo
            for vector, i in zip(batch.numpy(), todo):
                _write(folder / f"{hashes[i]}.npy", vector)
                found[hashes[i]] = vector
    return torch.from_numpy(np.stack([found[h] for h in hashes])).float()
