"""Exact cosine top-k search, chunked over the gallery, and a saveable index.

``search`` never builds the full (n_queries, n_gallery) similarity matrix: it
walks the gallery in chunks, keeps a running top-k, and validates each chunk
as it goes (no whole-gallery temporary), so a 1,000,000 x 512 gallery is
searched with memory bounded by ``n_queries * chunk_size``.
``EmbeddingIndex`` embeds once and answers many queries, both directions.
Taught in notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .utils import NORM_TOLERANCE, check_embeddings

DEFAULT_CHUNK_SIZE = 65_536


def _check_chunk(chunk: torch.Tensor, offset: int) -> None:
    norms = torch.linalg.vector_norm(chunk, dim=1)  # (chunk,), no (chunk, dim) copy
    bad = ~((norms - 1).abs() <= NORM_TOLERANCE)  # catches NaN/inf and zero rows
    if bad.any():
        row = int(bad.nonzero()[0])
        raise ValueError(
            f"gallery_emb row {offset + row} is not a unit vector (norm "
            f"{float(norms[row]):.4g}); it has NaN/inf, is zero or is unnormalised"
        )


def search(
    query_emb: torch.Tensor,
    gallery_emb: torch.Tensor,
    *,
    k: int,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    check_gallery: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-k cosine search.

    Parameters
    ----------
    query_emb : torch.Tensor of shape (n_queries, dim), L2-normalised
        A single query of shape (dim,) is treated as one row.
    gallery_emb : torch.Tensor of shape (n_gallery, dim), L2-normalised
    k : int
        Number of results per query, 1 <= k <= n_gallery.
    chunk_size : int
        Gallery rows scored at once; memory is about n_queries * chunk_size floats.
    check_gallery : bool
        Check every gallery row for NaN, zero and non-unit norms, chunk by chunk
        (an extra read of the gallery). :class:`EmbeddingIndex` checks rows once
        when they are added and skips it here.

    Returns
    -------
    scores : torch.Tensor of shape (n_queries, k), cosine similarities, best first
    indices : torch.Tensor of shape (n_queries, k), int64 rows of the gallery
    """
    query_emb = check_embeddings(query_emb, "query_emb")
    if not isinstance(gallery_emb, torch.Tensor) or gallery_emb.ndim != 2:
        raise ValueError("gallery_emb must be a 2-D tensor of shape (n_gallery, dim)")
    n_gallery, dim = gallery_emb.shape
    if n_gallery == 0:
        raise ValueError("gallery_emb is empty: nothing to search")
    if query_emb.shape[1] != dim:
        raise ValueError(f"query dim {query_emb.shape[1]} != gallery dim {dim}")
    if not isinstance(k, int) or not 1 <= k <= n_gallery:
        raise ValueError(
            f"k must be an int in [1, {n_gallery}] (gallery size), got {k}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    query = query_emb.to(gallery_emb.dtype)
    best_scores = best_indices = None
    for start in range(0, n_gallery, chunk_size):
        chunk = gallery_emb[start : start + chunk_size]
        if check_gallery:
            _check_chunk(chunk, start)
        scores = query @ chunk.T  # (n_queries, chunk)
        top_scores, top_idx = scores.topk(min(k, len(chunk)), dim=1)
        top_idx += start
        if best_scores is not None:
            top_scores = torch.cat([best_scores, top_scores], dim=1)
            top_idx = torch.cat([best_indices, top_idx], dim=1)
            top_scores, order = top_scores.topk(min(k, top_scores.shape[1]), dim=1)
            top_idx = top_idx.gather(1, order)
        best_scores, best_indices = top_scores, top_idx
    return best_scores, best_indices


class EmbeddingIndex:
    """Image and text embeddings of one model, embedded once, searched many times.

    Parameters
    ----------
    model_name : str
        Recorded with the index; loading checks it so that queries from another
        model are not searched against it by mistake.
    """

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.image_emb: torch.Tensor | None = None
        self.text_emb: torch.Tensor | None = None
        self.image_keys: list[str] = []
        self.text_keys: list[str] = []

    def _add(self, kind: str, emb: torch.Tensor, keys: list[str] | None) -> None:
        emb = check_embeddings(emb, f"{kind}_emb").float().cpu()
        keys = [str(x) for x in keys] if keys is not None else None
        if keys is not None and len(keys) != len(emb):
            raise ValueError(f"{len(keys)} {kind} keys for {len(emb)} embeddings")
        old = getattr(self, f"{kind}_emb")
        old_keys = getattr(self, f"{kind}_keys")
        if old is not None and old.shape[1] != emb.shape[1]:
            raise ValueError(
                f"{kind}_emb dim {emb.shape[1]} != index dim {old.shape[1]}"
            )
        start = 0 if old is None else len(old)
        keys = keys or [str(i) for i in range(start, start + len(emb))]
        setattr(self, f"{kind}_emb", emb if old is None else torch.cat([old, emb]))
        setattr(self, f"{kind}_keys", old_keys + keys)

    def add_images(
        self, image_emb: torch.Tensor, keys: list[str] | None = None
    ) -> None:
        """Append image embeddings (n, dim) with optional keys (e.g. file paths)."""
        self._add("image", image_emb, keys)

    def add_texts(self, text_emb: torch.Tensor, keys: list[str] | None = None) -> None:
        """Append text embeddings (m, dim) with optional keys (e.g. the captions)."""
        self._add("text", text_emb, keys)

    def _search(self, kind: str, query: torch.Tensor, k: int):
        gallery = getattr(self, f"{kind}_emb")
        if gallery is None:
            raise ValueError(f"the index holds no {kind} embeddings yet")
        return search(query, gallery, k=k, check_gallery=False)  # checked in _add

    def search_images(self, text_emb: torch.Tensor, k: int = 5):
        """Text -> image: return scores (q, k), indices (q, k) into the images."""
        return self._search("image", text_emb, k)

    def search_texts(self, image_emb: torch.Tensor, k: int = 5):
        """Image -> text: return scores (q, k), indices (q, k) into the texts."""
        return self._search("text", image_emb, k)

    def save(self, folder: str | Path, fmt: str = "safetensors") -> Path:
        """Write the index to ``folder`` as safetensors (default) or .npy + JSON keys."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {
            kind: getattr(self, f"{kind}_emb").contiguous()
            for kind in ("image", "text")
            if getattr(self, f"{kind}_emb") is not None
        }
        if fmt == "safetensors":
            save_file(tensors, str(folder / "embeddings.safetensors"))
        elif fmt == "npy":
            for kind, tensor in tensors.items():
                np.save(folder / f"{kind}_emb.npy", tensor.numpy(), allow_pickle=False)
        else:
            raise ValueError(f"fmt must be 'safetensors' or 'npy', got {fmt!r}")
        meta = {
            "model_name": self.model_name,
            "format": fmt,
            "image_keys": self.image_keys,
            "text_keys": self.text_keys,
        }
        (folder / "index.json").write_text(json.dumps(meta))
        return folder

    @classmethod
    def load(cls, folder: str | Path, model_name: str | None = None) -> EmbeddingIndex:
        """Read an index written by :meth:`save` (no pickle involved).

        ``model_name``, when given, must match the one recorded in the index.
        """
        folder = Path(folder)
        meta_path = folder / "index.json"
        if not meta_path.exists():
            raise FileNotFoundError(
                f"{meta_path} not found: not an EmbeddingIndex folder"
            )
        meta = json.loads(meta_path.read_text())
        if model_name is not None and meta["model_name"] != model_name:
            raise ValueError(
                f"index in {folder} was built with {meta['model_name']!r}, "
                f"not {model_name!r}"
            )
        index = cls(meta["model_name"])
        if meta["format"] == "safetensors":
            tensors = load_file(str(folder / "embeddings.safetensors"))
        else:
            tensors = {
                kind: torch.from_numpy(
                    np.load(folder / f"{kind}_emb.npy", allow_pickle=False)
                )
                for kind in ("image", "text")
                if (folder / f"{kind}_emb.npy").exists()
            }
        if "image" in tensors:
            index.add_images(tensors["image"], meta["image_keys"])
        if "text" in tensors:
            index.add_texts(tensors["text"], meta["text_keys"])
        return index
