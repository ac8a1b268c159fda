"""Benchmark: cmalign against the bare model and the naive retrieval, on this machine.

    python -m benchmarks.run --out docs/results [--lessons] [--quick]
    make bench

Every comparison is measured in one process, side by side, and reported as a
ratio as well as a time (shared machines are noisy). The ViT-B/32 numbers use
the offline stand-in for openai/clip-vit-base-patch32 (:mod:`cmalign.standin`:
the real architecture, preprocessing and BPE tokenizer, random weights; speed
does not depend on weight values). Writes ``benchmark.md``, ``results.json``
and ``search_scaling.png`` to ``--out`` (see :mod:`benchmarks.report`).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

from cmalign import standin
from cmalign.course.naive import retrieve_images_fixed
from cmalign.data import load_caption_folder, photos_dir
from cmalign.embed import embed_images, embed_pixels, embed_texts, preprocess_images
from cmalign.images import load_rgb_images
from cmalign.models import ClipBundle, load_clip
from cmalign.retrieval import search
from cmalign.toy.world import make_dataset

from .report import markdown, plot

REPEAT = {"max": 3}  # --quick sets 1: one timing per measurement


def _best(fn, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` calls (the least disturbed by other load)."""
    times = []
    for _ in range(min(repeat, REPEAT["max"])):
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


def vitb32_bundle(folder: Path) -> ClipBundle:
    """The openai/clip-vit-base-patch32 stand-in (random weights), written to ``folder``."""
    standin.write_snapshot(folder, layout="safetensors", seed=0)
    return load_clip(str(folder), device="cpu")


def bench_embedding(bundle: ClipBundle, photos: list, n: int, size: int = 32) -> dict:
    images = (photos * (n // len(photos) + 1))[:n]
    pixels = preprocess_images(bundle, images)
    batch = pixels[:size]
    # First calls pay one-time costs; they double as the bf16-vs-fp32 check.
    fp32 = embed_pixels(bundle, batch)
    bf16 = embed_pixels(bundle, batch, autocast=True)
    cosine = float((fp32 * bf16).sum(1).min())

    def bare():
        with torch.inference_mode():
            bundle.model.get_image_features(pixel_values=batch)

    bare_s, ours_s = _best(bare), _best(lambda: embed_pixels(bundle, batch))
    bf16_s = _best(lambda: embed_pixels(bundle, batch, autocast=True))
    prep_batch = _best(lambda: preprocess_images(bundle, images[:size]), 2)
    prep_single = _best(
        lambda: [preprocess_images(bundle, [im]) for im in images[:size]], 2
    )
    return {
        "batch_size": size,
        "bare_images_per_s": size / bare_s,
        "cmalign_images_per_s": size / ours_s,
        "ratio_cmalign_over_bare": bare_s / ours_s,
        "bf16_images_per_s": size / bf16_s,
        "bf16_min_cosine_to_fp32": cosine,
        "preprocess_batched_images_per_s": size / prep_batch,
        "preprocess_one_by_one_images_per_s": size / prep_single,
    }


def bench_texts(bundle: ClipBundle, captions: list[str]) -> dict:
    """Text throughput on toy-world captions, tokenised by OpenAI's real BPE
    (about 8-16 tokens each, like short real captions)."""
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


def bench_naive(bundle: ClipBundle, photos: list, sizes=(8, 32, 128)) -> dict:
    out = {}
    for n in sizes:
        images = (photos * (n // len(photos) + 1))[:n]
        naive_s = _best(
            lambda im=images: retrieve_images_fixed(bundle, "a photo of a cat", im), 1
        )
        gallery = embed_pixels(bundle, preprocess_images(bundle, images))

        def indexed(g=gallery):
            q = embed_texts(bundle, ["a photo of a cat"], progress=False)
            search(q, g, k=3)

        index_s = _best(indexed)
        out[n] = {
            "naive_s_per_query": naive_s,
            "index_s_per_query": index_s,
            "speedup": naive_s / index_s,
        }
    per_image = out[sizes[-1]]["naive_s_per_query"] / sizes[-1]
    out["naive_extrapolated_s_per_query_1M"] = per_image * 1_000_000
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
        import faiss  # optional extra: cmalign[faiss]
    except ImportError:
        return {"skipped": "faiss-cpu not installed (pip install cmalign[faiss])"}
    bundle = load_clip("toy", device="cpu")
    data = make_dataset(n, seed=11, split="test")
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
    REPEAT["max"] = 1 if args.quick else 3
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    photos = load_caption_folder(photos_dir())
    scratch = tempfile.TemporaryDirectory()
    bundle = vitb32_bundle(Path(scratch.name))
    results = {
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}",
        "date": time.strftime("%Y-%m-%d"),
        "command": "python -m benchmarks.run " + " ".join(argv or sys.argv[1:]),
    }
    results["embedding"] = bench_embedding(
        bundle, photos.images, 32 if args.quick else 64, 8 if args.quick else 32
    )
    results["texts"] = bench_texts(bundle, make_dataset(256, seed=3).captions)
    results["naive"] = bench_naive(
        bundle, load_rgb_images(photos.images), (8, 32) if args.quick else (8, 32, 128)
    )
    del bundle
    scratch.cleanup()
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000, 1_000_000]
    results["search"] = bench_search(sizes)
    results["faiss"] = bench_faiss(1_000 if args.quick else 20_000)
    results["lessons"] = bench_lessons() if args.lessons else {}
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "benchmark.md").write_text(markdown(results))
    plot(results["search"], results["naive"], out / "search_scaling.png")
    print(markdown(results))
    return results


if __name__ == "__main__":
    main()
