"""``python -m cmalign.scale embed``: embed shards on Ray, resumable shard by shard.

:func:`embed_shards` resolves ``--input`` (:mod:`cmalign.scale.shards`),
skips the shards whose output is already complete ("skipped 4 of 4 shards:
already complete"), streams the rest through the Ray Data stages of
:mod:`cmalign.scale.pipeline`, and on this driver gathers each shard's rows
until the shard is whole, then writes its Parquet part and its record
(:mod:`cmalign.scale.outputs`). Writing per input shard from the driver,
rather than with ``Dataset.write_parquet``, is what makes a shard the unit of
resuming: Ray's writer names files by block, so a killed run could not tell
which input shards were done. A killed job loses at most the shards in flight.
The embeddings are float32 unit rows equal to ``embed_images`` /
``embed_texts`` on the same images, stored as float32 or float16 (``--dtype``).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .outputs import (
    FORMAT,
    MANIFEST,
    RECORDS,
    check_same_run,
    completed_shards,
    input_signature,
    record_path,
    write_json,
    write_part,
)
from .readers import PARQUET_COLUMNS
from .shards import Shard, resolve_inputs

DTYPES = ("float32", "float16")


class _Shards:
    """Rows of the shards in flight, gathered until each is whole."""

    def __init__(self, shards: list[Shard], out: Path, dtype: str, texts: bool):
        self.by_id = {s.id: s for s in shards}
        self.out, self.dtype, self.texts = out, dtype, texts
        self.open: dict[str, dict] = {}

    def _buffer(self, shard_id: str) -> dict:
        return self.open.setdefault(shard_id, {
            "rows": [], "failures": [], "seen": 0, "total": None, "error": "",
            "started": time.perf_counter()})

    def add(self, batch: dict) -> list[dict]:
        """Take one block of embedded rows; return the records of shards it completed."""
        finished = []
        for i, kind in enumerate(batch["kind"]):
            shard_id = str(batch["shard"][i])
            buffer = self._buffer(shard_id)
            if kind == "end":
                buffer["total"], buffer["error"] = int(batch["index"][i]), str(batch["reason"][i])
            elif kind == "failure":
                buffer["seen"] += 1
                buffer["failures"].append({"key": str(batch["key"][i]), "reason": str(batch["reason"][i])})
            else:
                buffer["seen"] += 1
                text = batch["text_embedding"][i] if self.texts else None
                caption = batch["caption"][i]
                buffer["rows"].append((int(batch["index"][i]), str(batch["key"][i]),
                                       None if caption is None else str(caption),
                                       str(batch["source"][i]), batch["image_embedding"][i], text))
            if buffer["total"] is not None and buffer["seen"] == buffer["total"]:
                finished.append(self._finish(shard_id, self.open.pop(shard_id)))
        return finished

    def _finish(self, shard_id: str, buffer: dict) -> dict:
        shard = self.by_id[shard_id]
        rows = sorted(buffer["rows"], key=lambda row: row[0])
        if rows:
            columns = {"key": [r[1] for r in rows], "caption": [r[2] for r in rows],
                       "source": [r[3] for r in rows]}
            texts = np.stack([r[5] for r in rows]) if self.texts else None
            write_part(self.out, shard, columns, np.stack([r[4] for r in rows]), texts, self.dtype)
        record = {
            "id": shard.id, "input": shard.path, "signature": input_signature(shard),
            "status": "error" if buffer["error"] else "complete",
            "error": buffer["error"] or None,
            "n_samples": buffer["seen"], "n_embedded": len(rows),
            "n_failed": len(buffer["failures"]), "failures": buffer["failures"],
            "output": f"part-{shard.id}.parquet" if rows else None,
            "seconds": round(time.perf_counter() - buffer["started"], 3),
        }
        write_json(record_path(self.out, shard), record)
        return record


def _preprocessing(bundle) -> dict:
    processor = getattr(bundle.processor, "image_processor", None)
    try:
        config = processor.to_dict()
    except AttributeError:
        config = {"repr": repr(processor)}
    return {"family": getattr(bundle, "family", "clip"), "image_processor": config}


def _manifest(base: dict, inputs, records: dict, run: dict) -> dict:
    shards = []
    for shard in inputs.shards:
        record = records.get(shard.id, {"status": "pending"})
        shards.append({"id": shard.id, "input": shard.path, **{k: record.get(k) for k in (
            "status", "error", "n_samples", "n_embedded", "n_failed", "output")}})
    failures = [{"shard": r["input"], **f} for r in records.values() for f in r.get("failures", [])]
    failures += [{"shard": r["input"], "key": None, "reason": r["error"]}
                 for r in records.values() if r.get("error")]
    done = [r for r in records.values() if r.get("status") == "complete"]
    counts = {
        "shards": len(inputs.shards), "shards_complete": len(done),
        "samples": sum(r.get("n_samples", 0) for r in records.values()),
        "embedded": sum(r.get("n_embedded", 0) for r in records.values()),
        "failed": sum(r.get("n_failed", 0) for r in records.values()),
    }
    return {**base, "status": "complete" if len(done) == len(inputs.shards) else run["status"],
            "counts": counts, "failures": failures, "missing_inputs": inputs.missing,
            "shards": shards, "last_run": run}


def embed_shards(
    model: str,
    input: str,
    out: str | Path,
    *,
    texts: bool = False,
    batch_size: int = 32,
    dtype: str = "float32",
    address: str | None = None,
    autocast: bool = False,
    image_column: str = PARQUET_COLUMNS["image"],
    caption_column: str = PARQUET_COLUMNS["caption"],
    key_column: str = PARQUET_COLUMNS["key"],
    folder_shard_size: int = 1000,
    cache_dir: str | None = None,
    log: Callable[[str], None] = print,
) -> dict:
    """Embed every image (and with ``texts`` its first caption) of ``input`` into ``out``.

    Parameters
    ----------
    model : str
        Hub id, folder or "toy", as :func:`cmalign.load_clip` takes it.
    input : str
        Shard pattern, file or folder (see :func:`cmalign.scale.shards.resolve_inputs`).
    out : str or Path
        Output folder (:mod:`cmalign.scale.outputs`); a rerun resumes it.
    texts : bool
        Embed captions too (``text_embedding``); a sample without one fails.
    batch_size : int
        Images per decode task and per model call.
    dtype : "float32" or "float16"
        Precision the embeddings are stored in (computed in float32).
    address : str, optional
        An existing Ray cluster; default: a local Ray (:mod:`cmalign.scale.session`).

    Returns
    -------
    dict
        The manifest written to ``out/manifest.json``.
    """
    from ..cache import model_key
    from ..models import load_clip
    from .extra import require
    from .pipeline import build_dataset
    from .session import ray_session

    require("ray.data"), require("pyarrow")  # one line naming the extra, before any work

    if dtype not in DTYPES:
        raise ValueError(f"--dtype must be one of {DTYPES}, got {dtype!r}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    started = time.perf_counter()
    inputs = resolve_inputs(input, folder_shard_size=folder_shard_size)
    log(inputs.summary())
    bundle = load_clip(model, device="cpu", cache_dir=cache_dir)
    out = Path(out)
    base = {"format": FORMAT, "model": model, "model_key": model_key(bundle),
            "weights_file": bundle.weights_file, "dim": bundle.embed_dim, "dtype": dtype,
            "texts": texts, "preprocessing": _preprocessing(bundle), "input": str(input),
            "input_kind": inputs.kind}
    check_same_run(out, base)
    (out / RECORDS).mkdir(parents=True, exist_ok=True)
    records = completed_shards(out, inputs.shards)
    todo = [s for s in inputs.shards if s.id not in records]
    if records:
        log(f"skipped {len(records)} of {len(inputs.shards)} shards: already complete")
    run = {"status": "running", "shards_this_run": len(todo), "host": platform.node()}
    write_json(out / MANIFEST, _manifest(base, inputs, records, run))
    embedded, pipeline_seconds = 0, 0.0
    try:
        if todo:
            with ray_session(address, log=log):
                columns = {"image_column": image_column, "caption_column": caption_column,
                           "key_column": key_column}
                env = {k: v for k, v in os.environ.items()
                       if k in ("CMALIGN_TOY_MODEL", "HF_HUB_OFFLINE", "HF_HUB_CACHE", "HF_HOME")}
                ds, layout = build_dataset(
                    todo, model=model, expected_key=base["model_key"], bundle=bundle,
                    texts=texts, batch_size=batch_size, autocast=autocast, columns=columns,
                    cache_dir=cache_dir, env=env)
                run["layout"] = layout
                gather, t0 = _Shards(todo, out, dtype, texts), time.perf_counter()
                for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
                    for record in gather.add(batch):
                        records[record["id"]] = record
                        embedded += record["n_embedded"]
                        log(f"shard {record['id']}: {record['n_embedded']} embedded, "
                            f"{record['n_failed']} failed"
                            + (f", {record['error']}" if record["error"] else "")
                            + f" [{len(records)}/{len(inputs.shards)}]")
                pipeline_seconds = time.perf_counter() - t0
        run["status"] = "finished"
    except BaseException:
        run["status"] = "interrupted"
        raise
    finally:
        run.update(elapsed_seconds=round(time.perf_counter() - started, 3),
                   pipeline_seconds=round(pipeline_seconds, 3), embedded=embedded,
                   images_per_second=round(embedded / pipeline_seconds, 2) if pipeline_seconds else None)
        manifest = _manifest(base, inputs, records, run)
        write_json(out / MANIFEST, manifest)
    counts = manifest["counts"]
    log(f"{counts['embedded']} images embedded, {counts['failed']} failed "
        f"({len(manifest['failures'])} listed in {out / MANIFEST})")
    return json.loads(json.dumps(manifest))
