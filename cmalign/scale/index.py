"""``python -m cmalign.scale index``: a FAISS index chosen by a stated rule, its recall measured.

The rule (:func:`choose_index`, printed by the command and written into the
manifest), for ``n`` unit vectors of dimension ``d`` and a RAM budget ``memory``:

1. **flat** (exact inner product, ``IndexFlatIP``) when ``n <= 100,000`` and
   the ``4·n·d`` bytes fit the budget: exact search is fast enough there
   (a few ms per query) and nothing is lost.
2. otherwise **IVF-PQ with exact re-ranking**: ``nlist`` = the power of two
   nearest ``4·√n`` coarse cells (at most ``n / 40``, so each centroid has
   40 training points); PQ codes of ``m`` bytes, ``m`` the largest of
   ``d/4, d/8, d/16, d/32`` whose codes and ids (``n·(m + 8)`` bytes) fit
   the budget; the ``k·k_factor`` best candidates are re-scored exactly
   against the float32 vectors (``IndexRefineFlat``), which stay on disk,
   memory-mapped (``faiss.IO_FLAG_MMAP_IFC``): RAM holds the codes, disk
   the vectors, and only the candidates' rows are read.
3. **hnsw** only when asked (``kind="hnsw"``): the lowest latency, but more
   memory than flat (the graph) and the slowest build.

The search parameters (``nprobe`` and ``k_factor``, powers of two from 1 to
256, or ``efSearch``) are tuned on held-out queries — 1,000 rows of the collection searched
leave-one-out (their own row excluded), or the queries given — as the
fastest setting whose recall@10 reaches ``target_recall`` (0.95), else the
fastest within 0.002 of the best recall reached (and the report says so). Recall@k
is ``|approximate top-k ∩ exact top-k| / k`` averaged over queries, the
exact top-k from :func:`cmalign.retrieval.search`. Recall@1/@10, bytes per
vector (RAM and disk), build time and query latency (batched and single,
against exact chunked search) are written to ``INDEX/manifest.json``.
Searched through :mod:`cmalign.scale.search`.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import torch

from ..retrieval import search as exact_search
from .extra import require
from .outputs import write_json

KINDS = ("auto", "flat", "ivfpq", "hnsw")
FLAT_MAX = 100_000
TARGET_RECALL = 0.95
N_QUERIES = 1000
HNSW_M = 32
_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30}


def parse_memory(memory: str | int) -> int:
    """``"4GB"`` -> 4,000,000,000 bytes (also ``MB``, ``GiB``, a plain number of bytes)."""
    if isinstance(memory, int):
        return memory
    match = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", str(memory))
    if not match or match.group(2).lower() not in _UNITS:
        raise ValueError(f"--memory must look like 4GB, 512MB or 2GiB, got {memory!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def choose_index(n: int, dim: int, memory: int, kind: str = "auto") -> dict:
    """The index the rule picks: ``kind``, FAISS factory string, parameters and why."""
    if kind not in KINDS:
        raise ValueError(f"--kind must be one of {KINDS}, got {kind!r}")
    flat_bytes = 4 * n * dim
    if kind == "flat" or (kind == "auto" and n <= FLAT_MAX and flat_bytes <= memory):
        if flat_bytes > memory:
            raise ValueError(f"a flat index of {n:,} x {dim} needs {flat_bytes:,} B, over --memory {memory:,} B")
        return {"kind": "flat", "factory": "Flat", "rule": (
            f"flat: n = {n:,} <= {FLAT_MAX:,} and 4·n·d = {flat_bytes / 1e6:,.1f} MB fits "
            f"{memory / 1e6:,.0f} MB: exact inner product" if kind == "auto" else "flat: asked for")}
    if kind == "hnsw":
        need = n * (4 * dim + 2 * HNSW_M * 4 + 8)
        if need > memory:
            raise ValueError(f"HNSW over {n:,} x {dim} needs about {need / 1e9:.2f} GB, over --memory")
        return {"kind": "hnsw", "factory": f"HNSW{HNSW_M},Flat", "rule": "hnsw: asked for"}
    nlist = 2 ** round(math.log2(max(1.0, 4 * math.sqrt(n))))
    nlist = int(max(1, min(nlist, 65536, n // 40)))
    overhead = 4 * nlist * dim + 4 * 256 * dim
    for div in (4, 8, 16, 32):
        m = dim // div
        if m >= 1 and dim % m == 0 and n * (m + 8) + overhead <= memory:
            break
    else:
        raise ValueError(f"no PQ code of {n:,} x {dim} fits --memory {memory:,} B "
                         f"(the smallest needs {n * (dim // 32 + 8) + overhead:,} B)")
    why = ("ivfpq: asked for" if kind == "ivfpq" else f"ivfpq: n = {n:,} > {FLAT_MAX:,}"
           if n > FLAT_MAX else f"ivfpq: flat ({flat_bytes / 1e6:,.1f} MB) does not fit "
           f"{memory / 1e6:,.0f} MB")
    return {"kind": "ivfpq", "factory": f"IVF{nlist},PQ{m}", "nlist": nlist, "m": m,
            "rule": f"{why}: IVF{nlist} (≈4·√n cells), PQ{m} (largest of d/4..d/32 whose "
                    f"{m + 8} B/vector fit the budget), exact re-ranking from the "
                    "memory-mapped vectors"}


def _build(vectors: np.ndarray, plan: dict, seed: int):
    faiss = require("faiss")
    n, dim = vectors.shape
    if plan["kind"] == "flat":
        index = faiss.IndexFlatIP(dim)
    elif plan["kind"] == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    else:
        base = faiss.index_factory(dim, plan["factory"], faiss.METRIC_INNER_PRODUCT)
        base.do_polysemous_training = False  # slow, and unused here
        base.cp.seed = seed
        rows = np.random.default_rng(seed).permutation(n)[: max(40 * plan["nlist"], 10_000)]
        base.train(vectors[np.sort(rows)])
        index = faiss.IndexRefineFlat(base)
    for start in range(0, n, 262_144):  # add in chunks: bounded temporaries
        index.add(vectors[start : start + 262_144])
    return index


def _tuning_queries(vectors: np.ndarray, queries, seed: int):
    if queries is not None:
        return np.ascontiguousarray(np.asarray(queries, dtype=np.float32)), None
    rows = np.sort(np.random.default_rng(seed + 1).choice(len(vectors), min(N_QUERIES, len(vectors)), replace=False))
    return np.ascontiguousarray(vectors[rows]), rows


def top_ids(ids: np.ndarray, rows: np.ndarray | None, k: int) -> np.ndarray:
    """The first ``k`` ids of each row, a query's own row removed (leave-one-out)."""
    if rows is None:
        return ids[:, :k]
    out = np.empty((len(ids), k), dtype=ids.dtype)
    for q, (row, own) in enumerate(zip(ids, rows)):
        kept = row[row != own]
        out[q] = kept[:k]
    return out


def recall_at(approx: np.ndarray, exact: np.ndarray, k: int) -> float:
    """Mean over queries of |approx top-k ∩ exact top-k| / k."""
    hits = [len(set(a[:k].tolist()) & set(e[:k].tolist())) for a, e in zip(approx, exact)]
    return float(np.mean(hits)) / k


def _measure(index, queries, rows, exact, k: int) -> dict:
    extra = 0 if rows is None else 1
    start = time.perf_counter()
    _, ids = index.search(queries, k + extra)
    batched = (time.perf_counter() - start) / len(queries)
    ids = top_ids(ids, rows, k)
    return {"recall@1": recall_at(ids, exact, 1), "recall@10": recall_at(ids, exact, min(10, k)),
            "ms_per_query_batched": 1e3 * batched}


def _set(index, plan: dict, setting: dict) -> None:
    faiss = require("faiss")
    if plan["kind"] == "ivfpq":
        faiss.extract_index_ivf(index).nprobe = setting["nprobe"]
        index.k_factor = setting["k_factor"]
    elif plan["kind"] == "hnsw":
        index.hnsw.efSearch = setting["efSearch"]


#: Re-ranked candidates per result tried: at 5M fitted-mixture vectors PQ32 needed
#: more than 64 (recall@10 0.92 at 64), at 1M 32 (0.97).
K_FACTORS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _grid(plan: dict) -> list[list[dict]]:
    if plan["kind"] == "ivfpq":
        probes = [p for p in (1, 2, 4, 8, 16, 32, 64, 128, 256) if p <= plan["nlist"]]
        return [[{"nprobe": p, "k_factor": f} for p in probes] for f in K_FACTORS]
    if plan["kind"] == "hnsw":
        return [[{"efSearch": e} for e in (16, 32, 64, 128, 256, 512)]]
    return [[{}]]


def _tune(index, plan, queries, rows, exact, target: float) -> tuple[dict, list[dict]]:
    curve = []
    for line in _grid(plan):  # along a line, recall grows with the setting
        for step, setting in enumerate(line):
            _set(index, plan, setting)
            curve.append({**setting, **_measure(index, queries, rows, exact, 10)})
            if curve[-1]["recall@10"] >= target:
                break
            if step >= 2 and curve[-1]["recall@10"] - curve[-3]["recall@10"] < 0.002:
                break  # saturated: more probing does not help this k_factor
    good = [c for c in curve if c["recall@10"] >= target]
    if not good:  # the target is out of reach: the fastest of the (nearly) best
        top = max(c["recall@10"] for c in curve)
        good = [c for c in curve if c["recall@10"] >= top - 0.002]
    return min(good, key=lambda c: c["ms_per_query_batched"]), curve


def _single_latency(index, queries: np.ndarray, k: int, n: int = 50) -> float:
    times = []
    for q in queries[:n]:
        start = time.perf_counter()
        index.search(q[None], k)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def build_index(vectors, out: str | Path, *, keys=None, memory: str | int = "4GB",
                kind: str = "auto", captions=None, sources=None, queries=None,
                target_recall: float = TARGET_RECALL, model: dict | None = None,
                seed: int = 0, log=print) -> dict:
    """Build, tune and save a FAISS index of unit vectors; return its report.

    Parameters
    ----------
    vectors : array or torch.Tensor of shape (n, dim), L2-normalised
    out : folder to write (``index.faiss``, ``manifest.json``, ``meta.parquet``)
    keys : sequence of str, optional
        One per row (default: row numbers); ``captions`` / ``sources`` likewise.
    memory : RAM budget, e.g. ``"4GB"`` (:func:`parse_memory`)
    kind : "auto", "flat", "ivfpq" or "hnsw" (the rule: this module's docstring)
    queries : array of shape (n_queries, dim), optional
        Tuning queries (e.g. text embeddings); default 1,000 rows, leave-one-out.
    model : dict, optional
        ``model`` / ``model_key`` of the embeddings, so text and image queries
        can be embedded by :func:`cmalign.scale.open_index`.

    Returns
    -------
    dict
        The manifest: at least ``kind``, ``recall@1``, ``recall@10``,
        ``bytes_per_vector``, ``build_seconds``, and the tuning curve.
    """
    faiss = require("faiss")
    vectors = vectors.numpy() if isinstance(vectors, torch.Tensor) else np.asarray(vectors)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) == 0:
        raise ValueError(f"vectors must be a non-empty (n, dim) array, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.abs(norms - 1) < 1e-3):
        bad = int(np.flatnonzero(~(np.abs(norms - 1) < 1e-3))[0])
        raise ValueError(f"vectors row {bad} is not a unit vector (norm {norms[bad]:.4g})")
    n, dim = vectors.shape
    for name, column in (("keys", keys), ("captions", captions), ("sources", sources)):
        if column is not None and len(column) != n:
            raise ValueError(f"{len(column)} {name} for {n} vectors")
    plan = choose_index(n, dim, parse_memory(memory), kind)
    log(f"index rule: {plan['rule']}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    index = _build(vectors, plan, seed)
    build_seconds = time.perf_counter() - start
    tq, rows = _tuning_queries(vectors, queries, seed)
    extra = 0 if rows is None else 1
    start = time.perf_counter()
    _, exact_ids = exact_search(torch.from_numpy(tq), torch.from_numpy(vectors), k=min(10 + extra, n))
    exact_ms = 1e3 * (time.perf_counter() - start) / len(tq)
    exact = top_ids(exact_ids.numpy(), rows, min(10, n - extra))
    best, curve = _tune(index, plan, tq, rows, exact, target_recall)
    setting = {k: best[k] for k in ("nprobe", "k_factor", "efSearch") if k in best}
    _set(index, plan, setting)
    path = out / "index.faiss"
    faiss.write_index(index, str(path))
    ram = len(faiss.serialize_index(index.base_index)) if plan["kind"] == "ivfpq" else path.stat().st_size
    pa, pq = require("pyarrow"), require("pyarrow.parquet")
    meta = {"key": [str(k) for k in keys] if keys is not None else [str(i) for i in range(n)]}
    for name, column in (("caption", captions), ("source", sources)):
        if column is not None:
            meta[name] = [None if c is None else str(c) for c in column]
    pq.write_table(pa.table(meta), out / "meta.parquet")
    if rows is not None:
        np.save(out / "tuning_rows.npy", rows)
    else:
        np.save(out / "tuning_queries.npy", tq)
    report = {
        "format": "cmalign.scale.index/1", **plan, "n": n, "dim": dim, "setting": setting,
        "target_recall": target_recall, "target_reached": best["recall@10"] >= target_recall,
        "recall@1": best["recall@1"], "recall@10": best["recall@10"],
        "bytes_per_vector": ram / n, "disk_bytes_per_vector": path.stat().st_size / n,
        "flat_bytes_per_vector": 4 * dim, "build_seconds": build_seconds,
        "ms_per_query_batched": best["ms_per_query_batched"],
        "ms_per_query_single": _single_latency(index, tq, 10 + extra),
        "exact_ms_per_query_batched": exact_ms,
        "tuning": {"queries": len(tq), "leave_one_out": rows is not None, "curve": curve},
        "memory_budget": parse_memory(memory), "model": model or {},
    }
    report["speedup_vs_exact"] = exact_ms / max(report["ms_per_query_batched"], 1e-9)
    write_json(out / "manifest.json", report)
    log(f"{plan['kind']} {setting}: recall@1 {report['recall@1']:.3f}, recall@10 "
        f"{report['recall@10']:.3f}, {report['bytes_per_vector']:.0f} B/vector in RAM, "
        f"{report['ms_per_query_batched']:.3f} ms/query batched ({report['speedup_vs_exact']:.0f}x exact), "
        f"built in {build_seconds:.1f} s"
        + ("" if report["target_reached"] else f"; recall@10 target {target_recall} NOT reached"))
    return report
