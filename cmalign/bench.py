"""Benchmark: cmalign against the bare model and the seed, on this machine.

    python -m cmalign.bench --out docs/results [--lessons] [--quick]

Every comparison is measured in one process, side by side, and reported as a
ratio as well as a time (shared machines are noisy). The ViT-B/32 numbers use
a random-weight checkpoint of the real architecture (speed does not depend on
weight values). Writes ``benchmark.md``, ``results.json`` and
``search_scaling.png`` to ``--out``. Reported in the README.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

from . import toyworld
from .baseline import seed_retrieve_fixed
from .data import load_caption_folder, photos_dir
from .embed import embed_pixels, embed_texts, preprocess_images
from .images import load_rgb_images
from .models import ClipBundle, load_clip
from .retrieval import search
from .toymodel import build_vitb32_random


def _best(fn, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


class _PeakRSS:
    """Sample this process's resident memory in a thread; report the peak above start."""

    def __enter__(self):
        self.start = self.peak = self._rss()
        self.running = True
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()
        return self

    def _rss(self) -> int:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * 4096

    def _watch(self):
        while self.running:
            self.peak = max(self.peak, self._rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.extra_mb = (self.peak - self.start) / 2**20


def vitb32_bundle() -> ClipBundle:
    """Random-weight ViT-B/32 architecture with CLIP's real preprocessing."""
    model, processor = build_vitb32_random(seed=0)
    return ClipBundle(
        model, processor, "ViT-B/32 (random weights)", torch.device("cpu")
    )


def bench_embedding(bundle: ClipBundle, photos: list, n: int) -> dict:
    images = (photos * (n // len(photos) + 1))[:n]
    pixels = preprocess_images(bundle, images)
    batch = pixels[:32]

    def bare():
        with torch.inference_mode():
            bundle.model.get_image_features(pixel_values=batch)

    bare_s, ours_s = _best(bare), _best(lambda: embed_pixels(bundle, batch))
    bf16_s = _best(lambda: embed_pixels(bundle, batch, autocast=True))
    cosine = float(
        (embed_pixels(bundle, batch) * embed_pixels(bundle, batch, autocast=True))
        .sum(1)
        .min()
    )
    prep_batch = _best(lambda: preprocess_images(bundle, images[:32]), 2)
    prep_single = _best(
        lambda: [preprocess_images(bundle, [im]) for im in images[:32]], 2
    )
    return {
        "bare_images_per_s": 32 / bare_s,
        "cmalign_images_per_s": 32 / ours_s,
        "ratio_cmalign_over_bare": bare_s / ours_s,
        "bf16_images_per_s": 32 / bf16_s,
        "bf16_min_cosine_to_fp32": cosine,
        "preprocess_batched_images_per_s": 32 / prep_batch,
        "preprocess_one_by_one_images_per_s": 32 / prep_single,
    }


def bench_texts(bundle: ClipBundle, captions: list[str]) -> dict:
    """Text throughput on toy-world captions: all their words are in the toy BPE
    vocabulary, so their token counts (about 8-16) resemble real CLIP BPE on short
    captions (other words would be spelled letter by letter)."""
    out = {}
    for size in (1, 32, 256):
        texts = (captions * (size // len(captions) + 1))[:size]
        seconds = _best(
            lambda t=texts: embed_texts(bundle, t, batch_size=256, progress=False)
        )
        out[f"texts_per_s_batch_{size}"] = size / seconds
    texts = (captions * 10)[:256]
    tokens = bundle.processor.tokenizer(
        texts, padding="max_length", max_length=77, return_tensors="pt"
    )

    def padded_to_77():
        with torch.inference_mode():
            bundle.model.get_text_features(**tokens)

    out["texts_per_s_batch_256_padded_to_77"] = 256 / _best(padded_to_77)
    return out


def bench_seed(bundle: ClipBundle, photos: list) -> dict:
    out = {}
    for n in (8, 32, 128):
        images = (photos * (n // len(photos) + 1))[:n]
        seed_s = _best(
            lambda im=images: seed_retrieve_fixed(bundle, "a photo of a cat", im), 1
        )
        gallery = embed_pixels(bundle, preprocess_images(bundle, images))

        def indexed(g=gallery):
            q = embed_texts(bundle, ["a photo of a cat"], progress=False)
            search(q, g, k=3)

        index_s = _best(indexed)
        out[n] = {
            "seed_s_per_query": seed_s,
            "index_s_per_query": index_s,
            "speedup": seed_s / index_s,
        }
    per_image = out[128]["seed_s_per_query"] / 128
    out["seed_extrapolated_s_per_query_1M"] = per_image * 1_000_000
    return out


def bench_search(sizes: list[int], dim: int = 512) -> dict:
    g = torch.Generator().manual_seed(0)
    queries = torch.nn.functional.normalize(torch.randn(100, dim, generator=g), dim=-1)
    libc = ctypes.CDLL("libc.so.6") if sys.platform.startswith("linux") else None
    out = {}
    for n in sizes:
        gallery = torch.randn(n, dim, generator=g)
        gallery /= gallery.norm(dim=1, keepdim=True)  # in place: no second copy
        if libc is not None:
            libc.malloc_trim(0)  # return freed memory, so new allocations show in RSS
        with _PeakRSS() as memory:
            batched = _best(lambda gal=gallery: search(queries, gal, k=10), 2)
        single = _best(lambda gal=gallery: search(queries[:1], gal, k=10), 2)
        prechecked = _best(
            lambda gal=gallery: search(queries[:1], gal, k=10, check_gallery=False), 2
        )
        out[n] = {
            "ms_per_query_batched_100": 1000 * batched / 100,
            "ms_single_query": 1000 * single,
            "ms_single_query_prechecked": 1000 * prechecked,
            "extra_memory_mb": memory.extra_mb,
            "gallery_mb": gallery.numel() * 4 / 2**20,
        }
        del gallery
    return out


def bench_faiss(n: int, dim: int = 128) -> dict:
    """faiss flat / IVF / HNSW vs exact search on toy-model embeddings (real structure)."""
    try:
        import faiss
    except ImportError:
        return {"skipped": "faiss-cpu not installed (pip install cmalign[faiss])"}
    bundle = load_clip("toy", device="cpu")
    data = toyworld.make_dataset(n, seed=11, split="test")
    from .embed import embed_images

    gallery = embed_images(bundle, data.images, batch_size=512, progress=False)
    queries = embed_texts(bundle, data.captions[:200], progress=False)
    exact_s = _best(lambda: search(queries, gallery, k=10), 2)
    truth = search(queries, gallery, k=10)[1]
    out = {"n": n, "dim": gallery.shape[1], "exact_ms_per_query": 1000 * exact_s / 200}
    flat = faiss.IndexFlatIP(gallery.shape[1])
    ivf = faiss.IndexIVFFlat(
        faiss.IndexFlatIP(gallery.shape[1]),
        gallery.shape[1],
        64,
        faiss.METRIC_INNER_PRODUCT,
    )
    hnsw = faiss.IndexHNSWFlat(gallery.shape[1], 32, faiss.METRIC_INNER_PRODUCT)
    for name, index in (
        ("faiss_flat", flat),
        ("faiss_ivf64_nprobe8", ivf),
        ("faiss_hnsw32", hnsw),
    ):
        if name.startswith("faiss_ivf"):
            index.train(gallery.numpy())
            index.nprobe = 8
        index.add(gallery.numpy())
        seconds = _best(lambda ix=index: ix.search(queries.numpy(), 10), 2)
        found = torch.from_numpy(index.search(queries.numpy(), 10)[1])
        recall = sum(
            len(set(a.tolist()) & set(b.tolist())) for a, b in zip(found, truth)
        )
        out[name] = {
            "ms_per_query": 1000 * seconds / 200,
            "speedup_vs_exact": exact_s / seconds,
            "recall@10_vs_exact": recall / 2000,
        }
    return out


def bench_lessons() -> dict:
    out = {}
    for notebook in sorted(Path("notebooks").glob("[0-9][0-9]_*.ipynb")):
        start = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "--nbmake", str(notebook)],
            capture_output=True,
            text=True,
        )
        out[notebook.stem] = {
            "seconds": time.perf_counter() - start,
            "passed": result.returncode == 0,
        }
    return out


def _plot(search_results: dict, seed: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    sizes = sorted(search_results)
    ax.loglog(
        sizes,
        [search_results[n]["ms_single_query"] for n in sizes],
        "o-",
        label="cmalign exact search, 1 query",
    )
    ax.loglog(
        sizes,
        [search_results[n]["ms_per_query_batched_100"] for n in sizes],
        "s-",
        label="cmalign exact search, per query of 100",
    )
    seed_sizes = [n for n in seed if isinstance(n, int)]
    ax.loglog(
        seed_sizes,
        [1000 * seed[n]["seed_s_per_query"] for n in seed_sizes],
        "^-",
        label="seed: re-encode gallery per query (ViT-B/32)",
    )
    ax.loglog(
        seed_sizes,
        [1000 * seed[n]["index_s_per_query"] for n in seed_sizes],
        "v-",
        label="precomputed index incl. text encoding",
    )
    ax.set_xlabel("collection size (items)")
    ax.set_ylabel("ms per query")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _markdown(results: dict) -> str:
    e, t, s = results["embedding"], results["texts"], results["seed"]
    lines = [
        f"# cmalign benchmark\n\nMachine: {results['machine']}. Device: cpu. "
        f"{results['date']}. Command: `{results['command']}`.\n",
        "## 1. Image embedding, ViT-B/32 architecture (random weights), batch 32\n",
        "| path | images/s | ratio |",
        "|---|---|---|",
        f"| bare `get_image_features` on pixels | {e['bare_images_per_s']:.1f} | 1.00 |",
        f"| `cmalign.embed.embed_pixels` (same pixels) | {e['cmalign_images_per_s']:.1f} | "
        f"{e['ratio_cmalign_over_bare']:.2f} |",
        f"| same, bf16 autocast | {e['bf16_images_per_s']:.1f} | "
        f"{e['bf16_images_per_s'] / e['bare_images_per_s']:.2f} (min cosine to fp32 "
        f"{e['bf16_min_cosine_to_fp32']:.5f}) |",
        f"| preprocessing, batched (default) | {e['preprocess_batched_images_per_s']:.0f} "
        "| |",
        f"| preprocessing, one image at a time | "
        f"{e['preprocess_one_by_one_images_per_s']:.0f} | |",
        "\n## 2. Text embedding (padding to the longest caption)\n",
        "| batch | texts/s |",
        "|---|---|",
    ]
    lines += [f"| {b} | {t[f'texts_per_s_batch_{b}']:.0f} |" for b in (1, 32, 256)]
    lines += [
        f"| 256, padded to 77 tokens instead | "
        f"{t['texts_per_s_batch_256_padded_to_77']:.0f} |",
        "\n## 3. Retrieval per query: the seed vs a precomputed index (ViT-B/32)\n",
        "| N images | seed (re-encode all) | index (encode query + search) | speed-up |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {s[n]['seed_s_per_query']:.2f} s | {1000 * s[n]['index_s_per_query']:.1f}"
        f" ms | {s[n]['speedup']:.0f}x |"
        for n in s
        if isinstance(n, int)
    ]
    lines += [
        f"\nExtrapolated seed cost for 1,000,000 images: "
        f"{s['seed_extrapolated_s_per_query_1M'] / 3600:.1f} hours per query.\n",
        "## 4. Exact chunked search, 512-d (random unit vectors), k=10\n",
        "| gallery (size) | ms/query, 100 batched | ms, 1 query | ms, 1 query, rows "
        "checked once at add time (EmbeddingIndex) | peak memory beyond the gallery |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {n:,} ({r['gallery_mb']:.0f} MB) | {r['ms_per_query_batched_100']:.2f} | "
        f"{r['ms_single_query']:.1f} | {r['ms_single_query_prechecked']:.1f} | "
        f"{r['extra_memory_mb']:.0f} MB |"
        for n, r in results["search"].items()
    ]
    f = results["faiss"]
    if "skipped" in f:
        lines.append(f"\nfaiss: {f['skipped']}")
    else:
        lines += [
            f"\nfaiss on {f['n']:,} toy-model image embeddings ({f['dim']}-d), 200 text "
            f"queries; exact cmalign search {f['exact_ms_per_query']:.3f} ms/query:\n",
            "| index | ms/query | speed-up vs exact | recall@10 vs exact |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {k} | {v['ms_per_query']:.3f} | {v['speedup_vs_exact']:.2f}x | "
            f"{v['recall@10_vs_exact']:.3f} |"
            for k, v in f.items()
            if isinstance(v, dict)
        ]
    if results.get("lessons"):
        lines += [
            "\n## 5. Lessons under nbmake\n",
            "| notebook | seconds | passed |",
            "|---|---|---|",
        ]
        lines += [
            f"| {k} | {v['seconds']:.0f} | {v['passed']} |"
            for k, v in results["lessons"].items()
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="cmalign benchmark (CPU, offline)")
    parser.add_argument("--out", default="docs/results")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, for a smoke test"
    )
    parser.add_argument(
        "--lessons", action="store_true", help="also time every notebook"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    photos = load_caption_folder(photos_dir())
    bundle = vitb32_bundle()
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "command": "python -m cmalign.bench " + " ".join(argv or sys.argv[1:]),
    }
    results["embedding"] = bench_embedding(
        bundle, photos.images, 32 if args.quick else 64
    )
    results["texts"] = bench_texts(bundle, toyworld.make_dataset(256, seed=3).captions)
    results["seed"] = bench_seed(bundle, load_rgb_images(photos.images))
    del bundle
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    results["search"] = bench_search(sizes)
    results["faiss"] = bench_faiss(2_000 if args.quick else 20_000)
    results["lessons"] = bench_lessons() if args.lessons else {}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "benchmark.md").write_text(_markdown(results))
    _plot(results["search"], results["seed"], out / "search_scaling.png")
    print(_markdown(results))
    return results


if __name__ == "__main__":
    main()
