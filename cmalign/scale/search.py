"""Search a saved index: by vectors, or by texts and images through the index's model.

``cmalign.scale.open_index(INDEX)`` reads ``index.faiss`` memory-mapped where
FAISS allows it (``IO_FLAG_MMAP_IFC``: the flat vectors, and the re-ranking
vectors of an IVF-PQ index, stay on disk and are paged in as touched), sets
the tuned ``nprobe`` / ``k_factor`` / ``efSearch``, and answers
``.search(texts=[...] | images=[...] | vectors=tensor, k=10)`` with
:class:`Hits`: keys, scores (n_queries x k), row ids, and captions and
sources where the index has them. Text and image queries are embedded by the
model recorded in the manifest (loaded on first use; refused when its weights
are no longer those the embeddings were made with). Built by
:mod:`cmalign.scale.index`; used by :mod:`cmalign.scale.explore`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .extra import require


@dataclass
class Hits:
    """The answer to a batch of queries, best first.

    Attributes
    ----------
    scores : torch.Tensor of shape (n_queries, k), inner products (cosines)
    indices : torch.Tensor of shape (n_queries, k), int64 rows of the index
    keys : list of list of str, shape (n_queries, k)
    captions, sources : list of list of str, or None where the index has none
    """

    scores: torch.Tensor
    indices: torch.Tensor
    keys: list[list[str]]
    captions: list[list[str | None]] | None = None
    sources: list[list[str | None]] | None = None


class ScaleIndex:
    """An opened index folder (see :func:`open_index`)."""

    def __init__(self, folder: Path, index, manifest: dict, meta: dict):
        self.folder, self.index, self.manifest, self._meta = folder, index, manifest, meta
        self._bundle = None

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def bundle(self, **load_options):
        """The model the embeddings were made with (``manifest["model"]``), loaded once."""
        if self._bundle is None:
            from ..cache import model_key
            from ..models import load_clip

            model = self.manifest.get("model") or {}
            if not model.get("model"):
                raise ValueError(f"index {self.folder} records no model: search it with vectors=")
            bundle = load_clip(model["model"], **load_options)
            key = model_key(bundle)
            if model.get("model_key") and key != model["model_key"]:
                raise ValueError(
                    f"model {model['model']!r} now has other weights ({key}) than the "
                    f"embeddings of {self.folder} ({model['model_key']}): its queries would not match"
                )
            self._bundle = bundle
        return self._bundle

    def _queries(self, texts, images, vectors) -> np.ndarray:
        given = [name for name, v in (("texts", texts), ("images", images), ("vectors", vectors)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of texts=, images=, vectors= (got {given or 'none'})")
        if texts is not None:
            from ..embed import embed_texts

            vectors = embed_texts(self.bundle(), list(texts), progress=False)
        elif images is not None:
            from ..embed import embed_images

            vectors = embed_images(self.bundle(), list(images), progress=False)
        vectors = vectors.detach().cpu().numpy() if isinstance(vectors, torch.Tensor) else np.asarray(vectors)
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"query dim {vectors.shape[1]} != index dim {self.dim}")
        return vectors

    def search(self, *, texts=None, images=None, vectors=None, k: int = 10) -> Hits:
        """Top-``k`` rows for each query (exactly one of ``texts``, ``images``, ``vectors``)."""
        if not isinstance(k, int) or not 1 <= k <= len(self):
            raise ValueError(f"k must be an int in [1, {len(self)}], got {k}")
        scores, ids = self.index.search(self._queries(texts, images, vectors), k)

        def column(name):
            values = self._meta.get(name)
            if values is None:
                return None
            return [[values[i] if i >= 0 else None for i in row] for row in ids.tolist()]

        return Hits(torch.from_numpy(scores), torch.from_numpy(ids.astype(np.int64)),
                    column("key"), column("caption"), column("source"))

    def reconstruct(self, rows) -> torch.Tensor:
        """Vectors of ``rows`` (exact for flat and IVF-PQ, whose re-ranking store is exact)."""
        store = self.index.refine_index if self.manifest["kind"] == "ivfpq" else self.index
        return torch.from_numpy(np.stack([store.reconstruct(int(r)) for r in rows]))


def open_index(path: str | Path) -> ScaleIndex:
    """Open an index folder written by :func:`cmalign.scale.build_index`."""
    faiss = require("faiss")
    pq = require("pyarrow.parquet")
    folder = Path(path)
    manifest_path = folder / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{folder} is not an index folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    flags = faiss.IO_FLAG_MMAP_IFC if manifest["kind"] in ("flat", "ivfpq") else 0
    index = faiss.read_index(str(folder / "index.faiss"), flags)
    setting = manifest.get("setting", {})
    if "nprobe" in setting:
        faiss.extract_index_ivf(index).nprobe = setting["nprobe"]
        index.k_factor = setting["k_factor"]
    if "efSearch" in setting:
        index.hnsw.efSearch = setting["efSearch"]
    meta = pq.read_table(folder / "meta.parquet", memory_map=True).to_pydict()
    return ScaleIndex(folder, index, manifest, meta)
