"""Benchmark of cmalign.scale on this machine: Ray embedding throughput, FAISS index trade-offs.

    python -m benchmarks.scale --out docs/results [--part embed|index|all] [--sizes 100000,1000000]

- **embed**: ``cmalign.scale embed`` on a local Ray against single-process
  ``embed_images`` over the same images (2,000 toy scenes as PNG; 256
  ViT-B/32 stand-in images as 500x375 JPEG), measured side by side in one
  run and reported as ratios (the machine may be shared): end to end, and per
  image (each arm also runs on more images, 10,000 toy and 768 ViT-B/32; the
  difference removes the fixed start-up: Ray's actor process, its imports
  and model load).
- **index**: the auto index of ``cmalign.scale.build_index`` on vectors with
  real structure: a mixture fitted to toy-model embeddings of generated
  scenes (k-means cells, each a rank-8 Gaussian plus isotropic noise),
  sampled to each size; recall@1/@10 against exact search, bytes per vector,
  build time, query latency batched and single, and the whole tuning curve.
Writes ``scale.json`` and ``scale.md`` into ``--out``. CPU seconds are
reported beside wall seconds: on a shared machine wall time is noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def embed_throughput(model: str, images, *, n: int, batch_size: int, cache_dir=None, fmt="png") -> dict:
    """Single-process embed_images vs cmalign.scale embed on the same image files.

    Each arm runs on the first ``n`` of ``images`` and on all ``m`` of them, so
    that the per-image (steady) rate, ``(m - n) / (seconds(m) - seconds(n))``,
    and each arm's fixed start-up cost can be told apart. One untimed Ray call
    on one shard comes first (Ray Data's first-use costs in this process).
    """
    from cmalign import load_clip
    from cmalign.embed import embed_images
    from cmalign.scale.embed_job import embed_shards
    from cmalign.scale.toyshards import write_toy_shards

    work = Path(tempfile.mkdtemp(prefix="cmalign-scale-bench-"))
    paths = []
    for k, image in enumerate(images):
        paths.append(work / "files" / f"{k:06d}.{fmt}")
        paths[-1].parent.mkdir(exist_ok=True)
        image.save(paths[-1], quality=90) if fmt == "jpg" else image.save(paths[-1])
    m = len(images)
    per_shard = max(1, n // 8)
    for name, part in (("warm-up", images[:per_shard]), ("n", images[:n]), ("m", images)):
        write_toy_shards(work / name, images=part, captions=["x"] * len(part),
                         per_shard=per_shard, image_format=fmt)
    bundle = load_clip(model, device="cpu", cache_dir=cache_dir)
    load = os.getloadavg()[0]
    embed_shards(model, str(work / "warm-up"), work / "out-warm-up", batch_size=batch_size,
                 cache_dir=cache_dir, log=lambda _: None)
    base, ray_ = {}, {}
    for name, count in (("n", n), ("m", m)):
        files = [str(p) for p in paths[:count]]
        _, base[name], _ = _timed(lambda files=files: embed_images(
            bundle, files, batch_size=batch_size, progress=False))
        # the whole call: the driver's model load and planning, the actor pool's start;
        # Ray itself is already running (main), its start is recorded apart
        manifest, ray_[name], _ = _timed(lambda name=name: embed_shards(
            model, str(work / name), work / f"out-{name}", batch_size=batch_size,
            cache_dir=cache_dir, log=lambda _: None))
        layout = manifest["last_run"]["layout"]

    def rate(t: dict) -> float | None:  # None where start-up noise hid the extra images
        return (m - n) / (t["m"] - t["n"]) if t["m"] > t["n"] else None

    steady = {"base": rate(base), "ray": rate(ray_)}
    return {"model": model, "images": n, "images_m": m, "format": fmt, "batch_size": batch_size,
            "load_average": load,
            "embed_images": {"seconds": base["n"], "seconds_m": base["m"],
                             "images_per_second": n / base["n"],
                             "steady_images_per_second": steady["base"]},
            "scale_embed": {"call_seconds": ray_["n"], "call_seconds_m": ray_["m"],
                            "images_per_second": n / ray_["n"],
                            "steady_images_per_second": steady["ray"],
                            "startup_seconds": (ray_["n"] - n / steady["ray"]
                                                if steady["ray"] else None), "layout": layout},
            "ratio": base["n"] / ray_["n"],
            "ratio_steady": (steady["ray"] / steady["base"]
                             if steady["ray"] and steady["base"] else None)}


def fresh_import_seconds() -> float:
    """What a new Ray worker pays before its first image: torch, transformers, cmalign's models."""
    import subprocess
    import sys

    code = "import time; t = time.perf_counter(); import cmalign.models; print(time.perf_counter() - t)"
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split()[-1])


def _local_ray(attempts: int = 4):
    """The library's local Ray session; on a busy machine its start is retried."""
    from cmalign.scale.session import ray_session

    for attempt in range(1, attempts + 1):
        session = ray_session(log=print)
        try:
            session.__enter__()
            return session
        except RuntimeError as err:
            print(f"attempt {attempt}: {err}")
    raise RuntimeError(f"Ray did not start in {attempts} attempts")


def fitted_mixture(real: np.ndarray, n: int, *, cells: int = 512, rank: int = 8, seed: int = 0) -> np.ndarray:
    """``n`` unit vectors from a mixture of rank-``rank`` Gaussians fitted to ``real``."""
    import faiss

    rng = np.random.default_rng(seed)
    kmeans = faiss.Kmeans(real.shape[1], cells, niter=20, seed=seed, spherical=True)
    kmeans.train(real)
    _, assign = kmeans.index.search(real, 1)
    assign = assign[:, 0]
    weights = np.bincount(assign, minlength=cells) / len(real)
    models = []
    for c in range(cells):
        members = real[assign == c]
        mean = members.mean(0) if len(members) else kmeans.centroids[c]
        if len(members) > rank + 1:
            u, s, vt = np.linalg.svd(members - mean, full_matrices=False)
            basis = vt[:rank] * (s[:rank, None] / np.sqrt(len(members) - 1))
            rest = ((s[rank:] ** 2).sum() / (len(members) - 1)) / max(1, real.shape[1] - rank)
        else:
            basis, rest = np.zeros((rank, real.shape[1])), 1e-4
        models.append((mean, basis, np.sqrt(rest)))
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    which = rng.choice(cells, size=n, p=weights)
    for c in range(cells):
        rows = np.flatnonzero(which == c)
        if len(rows):
            mean, basis, noise = models[c]
            z = rng.standard_normal((len(rows), rank)) @ basis
            out[rows] = mean + z + noise * rng.standard_normal((len(rows), real.shape[1]))
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def toy_embeddings(n: int, cache: Path, seed: int = 1000) -> np.ndarray:
    """Toy-model image embeddings of ``n`` generated scenes (cached as .npy)."""
    if cache.is_file():
        return np.load(cache)
    from cmalign import load_clip
    from cmalign.embed import embed_pixels
    from cmalign.toy.world import make_dataset

    bundle = load_clip("toy", device="cpu")
    processor = bundle.processor.image_processor
    mean = np.array(processor.image_mean, np.float32)
    std = np.array(processor.image_std, np.float32)
    chunks = []
    for k in range(0, n, 5000):  # toy scenes are already 40 px: normalise directly
        data = make_dataset(min(5000, n - k), seed=seed + k // 5000, split="test")
        pixels = (np.stack([np.asarray(i) for i in data.images]).astype(np.float32) / 255 - mean) / std
        chunks.append(embed_pixels(bundle, torch.from_numpy(pixels.transpose(0, 3, 1, 2).copy())).numpy())
    vectors = np.concatenate(chunks)
    np.save(cache, vectors)
    return vectors


def index_tradeoffs(sizes: list[int], real: np.ndarray, work: Path) -> list[dict]:
    from cmalign.scale.index import build_index

    results = []
    for n in sizes:
        load = os.getloadavg()[0]  # the machine may be shared: say how busy it was
        vectors = fitted_mixture(real, n)
        report, wall, cpu = _timed(lambda v=vectors, n=n: build_index(
            v, work / f"index-{n}", memory="4GB", log=print))
        report = {k: v for k, v in report.items() if k != "model"}
        report["total_seconds"], report["total_cpu_seconds"] = wall, cpu
        report["load_average"] = load
        results.append(report)
        del vectors
    return results


def _num(value, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _load(row: dict) -> str:
    return f"{row['load_average']:.1f}" if "load_average" in row else "not recorded"


def markdown(results: dict) -> str:
    lines = ["# cmalign.scale on this machine", "",
             f"Last run {results['date']} on {results['machine']} ({results['cpus']} CPUs). Ratios "
             "come from one run each, both arms side by side; each row gives the machine's 1-minute "
             "load average when it started (2 CPUs: a load above 2 means another job was running). "
             "No GPU was available: **the GPU figure (img/s from JPEG tar shards with ViT-B/32 in "
             "bf16) is not measured.**", ""]
    if results.get("embed"):
        lines += ["## Embedding: `cmalign.scale embed` (local Ray) vs `embed_images` (one process)", "",
                  "Each arm ran on n images and on m (the n plus more): *end to end* is n images "
                  "over the whole call on n (for Ray: the driver's model load and planning, the actor "
                  "pool's start, its imports and model load included; Ray itself was already running "
                  "and had made one untimed call); "
                  "*per image* is (m - n) / (seconds(m) - seconds(n)), the rate once both are "
                  "started; *start-up* is what the Ray call on n costs beyond n images at its "
                  "per-image rate.", "",
                  "| model | n (m) images | embed_images img/s | scale embed img/s | end-to-end ratio | "
                  "per-image img/s (one process / Ray) | per-image ratio | Ray start-up s | load |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in results["embed"]:
            if "ratio_steady" not in r:
                continue  # a row of the earlier one-size benchmark
            e, g = r["embed_images"], r["scale_embed"]
            lines.append(f"| {r['model']} | {r['images']} ({r['images_m']}) {r['format']} | "
                         f"{e['images_per_second']:.1f} | {g['images_per_second']:.1f} | {r['ratio']:.2f}x | "
                         f"{_num(e['steady_images_per_second'])} / {_num(g['steady_images_per_second'])} | "
                         f"{_num(r['ratio_steady'], 2)}x | {_num(g['startup_seconds'])} | {_load(r)} |")
        if results.get("ray_start_seconds"):
            lines += ["", f"Outside these calls: starting the local Ray took "
                      f"{results['ray_start_seconds']:.1f} s; a fresh Python process took "
                      f"{results['fresh_import_seconds']:.1f} s to import torch, transformers and "
                      "cmalign's models (what every new actor pays before loading the model)."]
        lines += ["", results.get("embed_runs_note", ""), ""]
    if results.get("embed_note"):
        lines += ["## Embedding: `cmalign.scale embed` (local Ray) vs `embed_images` (one process)", "",
                  results["embed_note"], ""]
    if results.get("index"):
        lines += ["## Indexes: the auto rule on fitted-mixture vectors (dim 128)", "",
                  "| n | kind | setting | recall@1 | recall@10 | B/vector RAM | B/vector disk | build s | "
                  "ms/query batched | ms/query single | exact ms/query | speed-up | load |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in results["index"]:
            lines.append(f"| {r['n']:,} | {r['factory']} | {r['setting']} | {r['recall@1']:.3f} | "
                         f"{r['recall@10']:.3f} | {r['bytes_per_vector']:.0f} | {r['disk_bytes_per_vector']:.0f} | "
                         f"{r['build_seconds']:.0f} | {r['ms_per_query_batched']:.3f} | "
                         f"{r['ms_per_query_single']:.2f} | {r['exact_ms_per_query_batched']:.2f} | "
                         f"{r['speedup_vs_exact']:.0f}x | {_load(r)} |")
        lines += ["", results.get("runs_note", ""), "", "Vectors: a mixture fitted to toy-model image embeddings of "
                  f"{results.get('real', 55000):,} generated scenes (512 k-means cells, each a rank-8 "
                  "Gaussian plus isotropic noise), sampled to each size and normalised — structure like "
                  "the model's, not i.i.d. noise. Recall@k = |approximate top-k ∩ exact top-k| / k over "
                  "1,000 rows searched leave-one-out; exact = `cmalign.retrieval.search` (chunked) on the "
                  "same queries, batched. RAM bytes/vector = the IVF-PQ codes and ids; disk adds the "
                  "float32 re-ranking vectors, memory-mapped.", ""]
        for r in results["index"]:
            if r["kind"] != "ivfpq":
                continue
            lines += [f"Recall@10 vs re-ranked candidates at {r['n']:,} (best over nprobe; ms/query batched):", "",
                      "| k_factor | nprobe | recall@10 | ms/query |", "|---|---|---|---|"]
            best: dict = {}
            for c in r["tuning"]["curve"]:
                if c["k_factor"] not in best or c["recall@10"] > best[c["k_factor"]]["recall@10"] + 1e-9:
                    best[c["k_factor"]] = c
            for f, c in sorted(best.items()):
                lines.append(f"| {f} | {c['nprobe']} | {c['recall@10']:.3f} | {c['ms_per_query_batched']:.2f} |")
            lines.append("")
        lines += ["The full tuning curves (every setting tried) are in scale.json."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="docs/results")
    parser.add_argument("--part", choices=["embed", "index", "all"], default="all")
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--real", type=int, default=55_000, help="toy embeddings the mixture is fitted to")
    parser.add_argument("--work", default=None, help="folder for caches and indexes (default: a temp folder)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="cmalign-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "scale.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    results.update(date=time.strftime("%Y-%m-%d"), machine=platform.machine(), cpus=os.cpu_count(),
                   torch=torch.__version__, real=args.real)
    if args.part in ("embed", "all"):
        from cmalign import standin
        from cmalign.toy.world import make_dataset

        toy = make_dataset(10_000, seed=7, split="test").images  # n = 2,000 and m = 10,000
        cache = work / "hf-cache"
        if not (cache / "models--openai--clip-vit-base-patch32").is_dir():
            standin.build_hub_cache(cache, layout="safetensors")
        photos = [im.resize((500, 375)) for im in make_dataset(768, seed=8, split="test").images]  # n = 256, m = 768
        start = time.perf_counter()
        session = _local_ray()  # started first, retried on a busy machine; idle while the baseline runs
        results["ray_start_seconds"] = time.perf_counter() - start
        results["fresh_import_seconds"] = fresh_import_seconds()
        try:
            for stale in ("embed_note", "embed_runs_note"):  # measured now
                results.pop(stale, None)
            results["embed"] = [
                embed_throughput("toy", toy, n=2000, batch_size=64),
                embed_throughput(standin.REPO_ID, photos, n=256, batch_size=32, cache_dir=str(cache), fmt="jpg"),
            ]
        finally:
            session.__exit__(None, None, None)
    if args.part in ("index", "all"):
        real = toy_embeddings(args.real, work / f"toy-{args.real}.npy")
        fresh = index_tradeoffs([int(s) for s in args.sizes.split(",")], real, work)
        # rows of earlier runs at other sizes or kinds stay: a 5M run adds to the 100k/1M ones
        measured = {(f["n"], f["kind"]) for f in fresh}
        kept = [r for r in results.get("index", []) if (r["n"], r["kind"]) not in measured]
        results["index"] = sorted(kept + fresh, key=lambda r: (r["n"], r["kind"] != "flat"))
    path.write_text(json.dumps(results, indent=1))
    (out / "scale.md").write_text(markdown(results))
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
