"""The output folder of ``python -m cmalign.scale embed``: Parquet parts, shard records, manifest.

Layout of ``--out DIR``::

    part-<shard id>.parquet   one per input shard: key, caption, source,
                              image_embedding [, text_embedding]
    _shards/<shard id>.json   the shard's record, written after its part:
                              status, counts, failures (key, reason)
    manifest.json             the whole run: model, weights hash, preprocessing,
                              dim, dtype, counts, failures, per-shard status,
                              elapsed time, images/s

Embeddings are fixed-size lists (``fixed_size_list<float>[dim]``), which
pandas, pyarrow, Ray Data and autofaiss read as they are. Every file is
written to a temporary name and renamed (atomic on one file system), so a
killed run leaves either a whole part and its record or neither: a shard
counts as done only when its record says ``complete``, and a rerun
(:func:`completed_shards`) skips exactly those. Used by
:mod:`cmalign.scale.embed` and read back by :func:`read_embeddings`
(``python -m cmalign.scale index``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .extra import require

if TYPE_CHECKING:  # shards imports the evaluate package (ImageFolder); outputs need not
    from .shards import Shard

MANIFEST = "manifest.json"
RECORDS = "_shards"
FORMAT = "cmalign.scale.embeddings/1"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json(path: Path, record: dict) -> None:
    write_atomic(path, (json.dumps(record, indent=1) + "\n").encode())


def input_signature(shard: Shard) -> dict:
    """Size and modification time of a shard's file (a changed input is redone)."""
    if shard.kind in ("webdataset", "parquet"):
        stat = os.stat(shard.path)
        return {"bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    return {"start": shard.start, "stop": shard.stop}


def part_path(out: Path, shard: Shard) -> Path:
    return out / f"part-{shard.id}.parquet"


def record_path(out: Path, shard: Shard) -> Path:
    return out / RECORDS / f"{shard.id}.json"


def write_part(
    out: Path,
    shard: Shard,
    columns: dict[str, list],
    image_emb: np.ndarray,
    text_emb: np.ndarray | None,
    dtype: str,
) -> Path:
    """Write one shard's embeddings (rows in shard order) as ``part-<id>.parquet``.

    Parameters
    ----------
    columns : dict with ``key``, ``caption``, ``source`` lists of length n
    image_emb : numpy.ndarray of shape (n, dim), float32
    text_emb : numpy.ndarray of shape (n, dim), or None
    dtype : "float32" or "float16", the stored precision
    """
    pa = require("pyarrow")
    pq = require("pyarrow.parquet")
    value_type = pa.float16() if dtype == "float16" else pa.float32()

    def fixed(emb: np.ndarray):
        flat = pa.array(emb.astype(dtype).reshape(-1), type=value_type)
        return pa.FixedSizeListArray.from_arrays(flat, emb.shape[1])

    table = {
        "key": pa.array(columns["key"], type=pa.string()),
        "caption": pa.array(columns["caption"], type=pa.string()),
        "source": pa.array(columns["source"], type=pa.string()),
        "image_embedding": fixed(image_emb),
    }
    if text_emb is not None:
        table["text_embedding"] = fixed(text_emb)
    path = part_path(out, shard)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(pa.table(table), tmp)
    os.replace(tmp, path)
    return path


def completed_shards(out: Path, shards: list[Shard]) -> dict[str, dict]:
    """Records of the shards already complete in ``out`` for these same inputs."""
    done = {}
    for shard in shards:
        path = record_path(out, shard)
        if not path.is_file():
            continue
        try:
            record = json.loads(path.read_text())
        except ValueError:
            continue  # never half-written (atomic), but be safe: redo it
        same_input = record.get("input") == shard.path and record.get(
            "signature"
        ) == input_signature(shard)
        has_part = record.get("n_embedded", 0) == 0 or part_path(out, shard).is_file()
        if record.get("status") == "complete" and same_input and has_part:
            done[shard.id] = record
    return done


def check_same_run(out: Path, expected: dict) -> None:
    """Refuse an ``--out`` that holds embeddings of another model, dtype or mode."""
    path = out / MANIFEST
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); move it away to start over") from None
    for field in ("model_key", "dtype", "texts", "dim"):
        if field in old and old[field] != expected[field]:
            raise ValueError(
                f"--out {out} holds embeddings with {field}={old[field]!r}, this run has "
                f"{expected[field]!r}: choose another --out (or delete it to start over)"
            )


def read_embeddings(
    folder: str | Path, *, column: str = "image_embedding"
) -> tuple[np.ndarray, dict[str, list]]:
    """All parts of an embed output, in shard order.

    Returns
    -------
    vectors : numpy.ndarray of shape (n, dim), float32
    meta : dict with ``key``, ``caption``, ``source`` lists of length n
    """
    pq = require("pyarrow.parquet")
    folder = Path(folder)
    parts = sorted(folder.glob("part-*.parquet"))
    if not parts:
        raise FileNotFoundError(f"{folder} holds no part-*.parquet (an embed --out folder?)")
    chunks, meta = [], {"key": [], "caption": [], "source": []}
    for part in parts:
        table = pq.read_table(part)
        if column not in table.column_names:
            raise ValueError(f"{part} has no column {column!r} (has {table.column_names})")
        values = table.column(column).combine_chunks()
        if table.num_rows:
            dim = values.type.list_size
            flat = values.flatten().to_numpy(zero_copy_only=False)
            chunks.append(flat.reshape(-1, dim).astype(np.float32, copy=False))
        for name in meta:
            meta[name] += table.column(name).to_pylist() if name in table.column_names else [None] * table.num_rows
    if not chunks:
        raise ValueError(f"{folder}: the parts hold no embeddings")
    return np.concatenate(chunks), meta
