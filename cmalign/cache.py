"""One on-disk cache of image and text embeddings, keyed by model and by content.

``embed_images(bundle, paths, cache_dir=...)`` and
``embed_texts(bundle, captions, cache_dir=...)`` land here. An image file is
keyed by the SHA-256 of its bytes, a caption by the SHA-256 of its UTF-8
text; each embedding is stored as ``<cache_dir>/<model key>/<hash>.npy``
(images) or ``<cache_dir>/<model key>/texts/<hash>.npy`` (plain arrays, no
pickle). The model key (:func:`model_key`) combines the model's name with a
fingerprint of its family, config, sampled weights, image preprocessing and
text cleaning / tokenisation (``bundle.identity()``), so retraining, swapping
a model or changing how inputs are prepared never reuses old vectors, and an
edited image gets a new hash. An entry that cannot be read, has the wrong
shape or is not a finite unit vector is reported, recomputed and overwritten
— never silently reused; both kinds go through the same checks. The cache
sits below :mod:`cmalign.embed`: it is handed the function that computes
missing embeddings and never imports it.
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
    """Short, filesystem-safe key: model name + hash of family, config, sampled
    weights, preprocessing and tokenisation (``bundle.identity()``)."""
    digest = hashlib.sha256(bundle.model.config.to_json_string().encode())
    digest.update(json.dumps(bundle.identity(), sort_keys=True, default=str).encode())
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


def text_hash(text: str) -> str:
    """SHA-256 of a caption's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


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
    warnings.warn(f"corrupt cache entry {entry}: {problem}; recomputing", stacklevel=5)
    return None


def _write(entry: Path, vector: np.ndarray) -> None:
    tmp = entry.with_suffix(".tmp.npy")
    np.save(tmp, vector, allow_pickle=False)
    os.replace(tmp, entry)  # atomic: a crash never leaves half a file behind


def _model_folder(bundle: ClipBundle, cache_dir: str | os.PathLike) -> Path:
    folder = Path(cache_dir) / model_key(bundle)
    folder.mkdir(parents=True, exist_ok=True)
    meta = folder / "model.json"
    if not meta.exists():
        record = {"name": bundle.name, "dim": bundle.embed_dim, **bundle.identity()}
        meta.write_text(json.dumps(record, indent=1, default=str))
    return folder


def cached_embeddings(
    folder: Path,
    items: Sequence,
    hashes: Sequence[str],
    dim: int,
    *,
    compute: Callable[[list], Iterable[torch.Tensor]],
) -> torch.Tensor:
    """Embeddings of ``items`` (keyed by ``hashes``), computing only those not in ``folder``.

    ``compute(todo)`` yields, batch after batch and in order, the
    (batch, dim) unit rows of the items not cached yet; each batch is written
    as soon as it comes, so an interrupted run resumes where it stopped.

    Returns
    -------
    torch.Tensor of shape (len(items), dim), float32, unit rows, in input order.
    """
    folder.mkdir(parents=True, exist_ok=True)
    found: dict[str, np.ndarray] = {}
    for h in set(hashes):
        entry = folder / f"{h}.npy"
        if entry.exists() and (vector := _read(entry, dim)) is not None:
            found[h] = vector
    first_of: dict[str, int] = {}
    for i, h in enumerate(hashes):
        if h not in found:
            first_of.setdefault(h, i)
    if first_of:
        todo = iter(first_of.values())
        for batch in compute([items[i] for i in first_of.values()]):
            # batch first: zip stops on it without taking one more index from todo
            for vector, i in zip(batch.numpy(), todo):
                _write(folder / f"{hashes[i]}.npy", vector)
                found[hashes[i]] = vector
    return torch.from_numpy(np.stack([found[h] for h in hashes])).float()


def cached_image_embeddings(
    bundle: ClipBundle,
    images: Sequence[str | os.PathLike],
    cache_dir: str | os.PathLike,
    *,
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
        As in :func:`cached_embeddings` (``embed_images`` passes its own loop).

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
    folder = _model_folder(bundle, cache_dir)
    hashes = [file_hash(item) for item in images]
    return cached_embeddings(folder, images, hashes, bundle.embed_dim, compute=compute)


def cached_text_embeddings(
    bundle: ClipBundle,
    texts: Sequence[str],
    cache_dir: str | os.PathLike,
    *,
    compute: Callable[[list], Iterable[torch.Tensor]],
) -> torch.Tensor:
    """Embeddings of captions, computing only those not cached yet (same checks
    as :func:`cached_image_embeddings`; entries under ``<model key>/texts/``).

    Returns
    -------
    torch.Tensor of shape (n_texts, embed_dim), float32, unit rows, in input order.
    """
    folder = _model_folder(bundle, cache_dir) / "texts"
    hashes = [text_hash(text) for text in texts]
    return cached_embeddings(folder, texts, hashes, bundle.embed_dim, compute=compute)
