"""Past one machine: sharded embedding on Ray Data, FAISS indexes with measured recall.

- ``python -m cmalign.scale embed`` (:mod:`.embed_job`): webdataset tar
  shards, Parquet files, caption folders and ImageFolders (:mod:`.patterns`,
  :mod:`.shards`, :mod:`.readers`, :mod:`.folders`) embedded by the model in a
  Ray actor pool (:mod:`.pipeline`, :mod:`.session`) into Parquet, resumable
  per shard (:mod:`.outputs`);
- ``python -m cmalign.scale index`` (:mod:`.index`): exact, IVF-PQ or HNSW
  by a stated rule, tuned, with recall against exact search;
  :func:`open_index` searches it (:mod:`.search`); :mod:`.explore` draws
  the interactive map from it;
- :mod:`.wds_benchmark`: CLIP_benchmark's webdataset layout for
  ``python -m cmalign.evaluate --dataset webdataset``; :mod:`.toyshards`
  writes toy data in these formats.

``ray[data]``, ``pyarrow`` and ``faiss-cpu`` are the ``scale`` extra
(``pip install 'cmalign[scale]'``), imported only when used
(:mod:`.extra`). The names below are imported on first use, so importing
this package (as ``python -m cmalign.evaluate`` does) loads nothing else.
"""

from __future__ import annotations

import importlib

#: public name -> module that defines it
_NAMES = {
    "INSTALL": "extra", "MissingExtraError": "extra", "build_index": "index",
    "choose_index": "index", "Hits": "search", "open_index": "search",
    "expand_braces": "patterns", "resolve_inputs": "shards", "embed_shards": "embed_job",
    "index_map": "explore",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str):
    if name not in _NAMES:
        raise AttributeError(f"module 'cmalign.scale' has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
