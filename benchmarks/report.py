"""Turn benchmark results into the report: ``benchmark.md`` and ``search_scaling.png``.

Called by :mod:`benchmarks.run`; the measured numbers live in ``docs/results``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot(search_results: dict, naive: dict, path: Path) -> None:
    """Per-query cost vs gallery size: naive re-encoding vs exact search."""

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
    naive_sizes = [n for n in naive if isinstance(n, int)]
    ax.loglog(
        naive_sizes,
        [1000 * naive[n]["naive_s_per_query"] for n in naive_sizes],
        "^-",
        label="naive: re-encode gallery per query (ViT-B/32)",
    )
    ax.loglog(
        naive_sizes,
        [1000 * naive[n]["index_s_per_query"] for n in naive_sizes],
        "v-",
        label="precomputed index incl. text encoding",
    )
    ax.set_xlabel("collection size (items)")
    ax.set_ylabel("ms per query")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def markdown(results: dict) -> str:
    e, t, s = results["embedding"], results["texts"], results["naive"]
    lines = [
        f"# cmalign benchmark\n\nMachine: {results['machine']}. Device: cpu. "
        f"{results['date']}. Command: `{results['command']}`.\n",
        "## 1. Image embedding, ViT-B/32 stand-in (random weights), "
        f"batch {e['batch_size']}\n",
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
        "\n## 3. Retrieval per query: the naive retrieval vs a precomputed index (ViT-B/32)\n",
        "| N images | naive (re-encode all) | index (encode query + search) | speed-up |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {n} | {s[n]['naive_s_per_query']:.2f} s | {1000 * s[n]['index_s_per_query']:.1f}"
        f" ms | {s[n]['speedup']:.0f}x |"
        for n in s
        if isinstance(n, int)
    ]
    lines += [
        f"\nExtrapolated naive cost for 1,000,000 images: "
        f"{s['naive_extrapolated_s_per_query_1M'] / 3600:.1f} hours per query.\n",
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
