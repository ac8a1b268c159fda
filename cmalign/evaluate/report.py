"""Reports of an evaluation: the printed table, and HTML pages of the failures.

:func:`format_table` is what ``python -m cmalign.evaluate`` prints.

:func:`write_retrieval_report` shows, for the text->image queries whose own
image ranked worst, the caption, its top-5 images and the relevant one; the
same for image->text queries; the metrics and the modality gap.
:func:`write_zeroshot_report` draws the confusion matrix and lists each
class's accuracy. Thumbnails are written next to the page, so the folder can
be zipped and opened anywhere. Written by ``python -m cmalign.evaluate --report``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure  # no pyplot: the caller's backend is left alone
from PIL import Image
from sklearn.metrics import ConfusionMatrixDisplay

from ..data import CaptionSet
from ..images import load_rgb_images

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}
img{height:96px;margin:2px;border:3px solid transparent}img.hit{border-color:#2a9d3a}
td,th{padding:4px 8px;text-align:left;vertical-align:top}tr:nth-child(even){background:#f4f4f4}
pre{white-space:pre-wrap;background:#f7f7f7;padding:1em}"""


def _thumb(folder: Path, image, key: str) -> str:
    name = f"thumbs/{key}.jpg"
    if not (folder / name).exists():
        rgb = load_rgb_images([image])[0]
        rgb.thumbnail((192, 192), Image.BICUBIC)
        rgb.save(folder / name, quality=85)
    return name


def _page(folder: Path, title: str, result: dict, body: list[str]) -> Path:
    metrics = json.dumps(result["metrics"], indent=1)
    text = (
        f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(result['protocol'])}</p>"
        + "".join(body)
        + f"<h2>All numbers</h2><pre>{html.escape(metrics)}</pre>"
    )
    page = folder / "index.html"
    page.write_text(text, encoding="utf-8")
    return page


def write_retrieval_report(
    folder: str | Path,
    data: CaptionSet,
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    ranks: dict[str, torch.Tensor],
    result: dict,
    n_worst: int = 12,
) -> Path:
    """Write ``folder/index.html`` for a retrieval run; returns its path.

    Parameters
    ----------
    image_emb : (n_images, dim); text_emb : (n_texts, dim), unit rows
    ranks : from :func:`cmalign.metrics.retrieval_ranks`
    """
    folder = Path(folder)
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    owner = torch.as_tensor(data.text_to_image)
    body = [
        f"<p>{result['n_images']} images, {result['n_captions']} captions; modality gap "
        f"(distance between the image and text centroids) "
        f"{result['metrics']['modality_gap']:.3f}.</p>",
        "<h2>Worst text&rarr;image queries</h2><table>"
        "<tr><th>rank</th><th>caption</th><th>top 5 (green: relevant)</th><th>its image</th></tr>",
    ]
    for t in ranks["text_to_image"].argsort(descending=True)[:n_worst].tolist():
        top = (text_emb[t] @ image_emb.T).topk(min(5, len(image_emb))).indices.tolist()
        cells = "".join(
            f"<img src='{_thumb(folder, data.images[i], f'i{i}')}'"
            + (" class='hit'" if i == owner[t] else "")
            + ">"
            for i in top
        )
        own = _thumb(folder, data.images[owner[t]], f"i{int(owner[t])}")
        body.append(
            f"<tr><td>{int(ranks['text_to_image'][t])}</td><td>{html.escape(data.captions[t])}</td>"
            f"<td>{cells}</td><td><img src='{own}' class='hit'></td></tr>"
        )
    body.append(
        "</table><h2>Worst image&rarr;text queries</h2><table>"
        "<tr><th>rank</th><th>image</th><th>top 5 captions</th><th>its captions</th></tr>"
    )
    for i in ranks["image_to_text"].argsort(descending=True)[:n_worst].tolist():
        top = (image_emb[i] @ text_emb.T).topk(min(5, len(text_emb))).indices.tolist()
        listed = "<br>".join(
            ("&#10003; " if owner[t] == i else "") + html.escape(data.captions[t])
            for t in top
        )
        mine = "<br>".join(
            html.escape(data.captions[t]) for t in (owner == i).nonzero()[:, 0].tolist()
        )
        body.append(
            f"<tr><td>{int(ranks['image_to_text'][i])}</td>"
            f"<td><img src='{_thumb(folder, data.images[i], f'i{i}')}'></td>"
            f"<td>{listed}</td><td>{mine}</td></tr>"
        )
    body.append("</table>")
    return _page(folder, f"{result['model']} on {result['dataset']}", result, body)


def write_zeroshot_report(
    folder: str | Path,
    images: Sequence,
    labels: Sequence[int],
    predicted: Sequence[int],
    names: Sequence[str],
    result: dict,
    n_examples: int = 24,
) -> Path:
    """Write ``folder/index.html`` (confusion matrix, per-class accuracy, misclassified images)."""
    folder = Path(folder)
    (folder / "thumbs").mkdir(parents=True, exist_ok=True)
    size = max(4.0, 0.35 * len(names) + 2)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        labels,
        predicted,
        labels=list(range(len(names))),
        display_labels=list(names),
        ax=ax,
        colorbar=False,
        xticks_rotation="vertical",
        include_values=len(names) <= 20,
    )
    ax.set_title("zero-shot confusion matrix (rows: true class)")
    fig.tight_layout()
    fig.savefig(folder / "confusion.png", dpi=110)
    rows = "".join(
        f"<tr><td>{html.escape(n)}</td><td>{100 * a:.1f}</td></tr>"
        for n, a in result["per_class_accuracy"].items()
    )
    wrong = [k for k, (y, p) in enumerate(zip(labels, predicted)) if y != p][
        :n_examples
    ]
    shown = "".join(
        f"<figure style='display:inline-block'><img src='{_thumb(folder, images[k], f'z{k}')}'>"
        f"<figcaption>{html.escape(names[labels[k]])} &rarr; {html.escape(names[predicted[k]])}"
        "</figcaption></figure>"
        for k in wrong
    )
    body = [
        "<img src='confusion.png' style='height:auto;max-width:100%'>",
        f"<h2>Accuracy per class</h2><table><tr><th>class</th><th>%</th></tr>{rows}</table>",
        f"<h2>Misclassified (true &rarr; predicted)</h2>{shown or '<p>none</p>'}",
    ]
    return _page(folder, f"{result['model']} on {result['dataset']}", result, body)


def format_table(result: dict) -> str:
    """The printed summary of a result record."""
    m, lines = result["metrics"], []
    if result["task"] == "zeroshot_retrieval":
        lines.append(
            f"{result['model']} on {result['dataset']} ({result['split']}): "
            f"{result['n_images']} images, {result['n_captions']} captions"
        )
        lines.append(
            f"{'':24s}{'R@1':>8s}{'R@5':>8s}{'R@10':>8s}{'mean rk':>9s}{'med rk':>8s}{'MRR':>7s}"
        )
        for name, cb, strict in (
            ("text->image", "image_retrieval", "text_to_image"),
            ("image->text", "text_retrieval", "image_to_text"),
        ):
            lines.append(
                f"{name + ' CLIP_benchmark':24s}"
                + "".join(f"{100 * m[f'{cb}_recall@{k}']:8.1f}" for k in (1, 5, 10))
            )
            lines.append(
                f"{name + ' strict':24s}"
                + "".join(f"{100 * m[f'{strict}_R@{k}']:8.1f}" for k in (1, 5, 10))
                + f"{m[f'{strict}_mean_rank']:9.1f}{m[f'{strict}_median_rank']:8.1f}"
                + f"{m[f'{strict}_mrr']:7.3f}   ({m[f'{strict}_tied_queries']} tied queries)"
            )
        for key, value in result["published"].items():
            lines.append(
                f"published {key}: {100 * value:.1f}   measured: {100 * m[key]:.1f}"
            )
        t = result["timing"]
        lines.append(
            f"images: {t['images_seconds']:.1f} s ({t['images_per_second']:.0f} img/s, "
            f"{t['device']}, {t['workers']} workers)  texts: {t['texts_seconds']:.1f} s  "
            f"metrics: {t['metrics_seconds']:.1f} s  modality gap: {m['modality_gap']:.3f}"
        )
    else:
        lines.append(
            f"{result['model']} on {result['dataset']}: {result['n_images']} images, "
            f"{len(result['classnames'])} classes, {result['n_templates']} templates"
        )
        lines.append(
            f"acc1 {100 * m['acc1']:.1f}   acc5 {100 * m['acc5']:.1f}   "
            f"mean per-class recall {100 * m['mean_per_class_recall']:.1f}"
        )
        for name, acc in result["per_class_accuracy"].items():
            lines.append(f"  {name:30s}{100 * acc:6.1f}")
    lines.append("protocol: " + result["protocol"])
    return "\n".join(lines)
