"""Pictures for the lessons: similarity heatmaps, image grids, curves, embedding maps.

Every function draws with matplotlib and returns the Figure (nothing is shown
or saved behind your back). Used throughout the notebooks.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.offsetbox import AnnotationBbox, OffsetImage
from PIL import Image

from .images import ImageLike, load_rgb_images


def _thumb(image: Image.Image, size: int = 64) -> np.ndarray:
    image = image.copy()
    image.thumbnail((size, size))
    return np.asarray(image)


def similarity_heatmap(
    similarity: torch.Tensor,
    images: Sequence[ImageLike] | None = None,
    captions: Sequence[str] | None = None,
    title: str = "cosine similarity",
    annotate: bool = True,
) -> Figure:
    """Heatmap of an (n_texts, n_images) similarity matrix with thumbnails and captions.

    Parameters
    ----------
    similarity : torch.Tensor of shape (n_texts, n_images)
    images : sequence of n_images images, optional
        Drawn as thumbnails above the columns.
    captions : sequence of n_texts str, optional
        Row labels.
    """
    sim = torch.as_tensor(similarity).detach().float().cpu().numpy()
    n_texts, n_images = sim.shape
    fig, ax = plt.subplots(figsize=(1.1 * n_images + 4, 0.6 * n_texts + 2.5))
    mesh = ax.imshow(sim, cmap="viridis", aspect="auto")
    fig.colorbar(mesh, ax=ax, fraction=0.03)
    if annotate and sim.size <= 400:
        for (row, col), value in np.ndenumerate(sim):
            ax.text(
                col,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value < sim.mean() else "black",
            )
    ax.set_yticks(range(n_texts))
    ax.set_yticklabels(
        [textwrap.shorten(c, 45) for c in captions] if captions else range(n_texts)
    )
    ax.set_xticks(range(n_images))
    if images is not None:
        ax.set_xticklabels([])
        for col, image in enumerate(load_rgb_images(images)):
            box = AnnotationBbox(
                OffsetImage(_thumb(image), zoom=0.5),
                (col, -0.5),
                xybox=(0, 22),
                xycoords="data",
                boxcoords="offset points",
                frameon=False,
                annotation_clip=False,
            )
            ax.add_artist(box)
        ax.set_title(title, pad=50)
    else:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def image_grid(
    images: Sequence[ImageLike],
    titles: Sequence[str] | None = None,
    ncols: int = 5,
    size: float = 2.0,
    highlight: Sequence[bool] | None = None,
    suptitle: str | None = None,
) -> Figure:
    """Images in a grid, e.g. retrieval results, with optional titles.

    ``highlight[i]`` True draws a green frame (a correct result), False a red one.
    """
    rgb = load_rgb_images(images)
    nrows = max(1, -(-len(rgb) // ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(rgb):
            ax.axis("off")
            continue
        ax.imshow(rgb[i])
        if titles is not None:
            ax.set_title(textwrap.fill(str(titles[i]), 24), fontsize=8)
        if highlight is not None:
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:green" if highlight[i] else "tab:red")
                spine.set_linewidth(3)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def training_curves(history: Mapping[str, Sequence[float]], x: str = "step") -> Figure:
    """One panel per logged quantity of a training history (see :func:`cmalign.train.fit`).

    ``history[x]`` gives the x axis; every other key with as many values is
    drawn against it; keys prefixed ``eval_`` are drawn against ``eval_step``.
    """
    keys = [k for k in history if k not in (x, "eval_step") and len(history[k])]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.6 * len(keys), 3), squeeze=False)
    for ax, key in zip(axes.flat, keys):
        xs = history["eval_step"] if key.startswith("eval_") else history[x]
        ax.plot(xs, history[key], marker="o" if key.startswith("eval_") else None)
        ax.set_title(key)
        ax.set_xlabel(x)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def embedding_map(
    coords: np.ndarray,
    modality: Sequence[str],
    labels: Sequence[str] | None = None,
    pairs: Sequence[tuple[int, int]] = (),
    thumbnails: Mapping[int, ImageLike] | None = None,
    title: str = "",
    ax: plt.Axes | None = None,
    palette: Mapping[str, Sequence[float]] | None = None,
) -> Figure:
    """2-D scatter of image and text embeddings (UMAP or PCA coordinates).

    Parameters
    ----------
    coords : array of shape (n_points, 2)
    modality : sequence of "image" / "text", one per point (marker shape)
    labels : sequence of str, optional
        Class per point (colour).
    pairs : sequence of (i, j)
        Grey lines joining point i (an image) to point j (its caption).
    thumbnails : mapping point index -> image, optional
        Small pictures drawn at those points.
    palette : mapping label -> colour, optional
        Colours per class (e.g. the toy world's own RGB, scaled to 0-1);
        default: a qualitative colour map. Without ``labels`` the two
        modalities get two colours.
    """
    coords = np.asarray(coords)
    fig = ax.figure if ax is not None else plt.figure(figsize=(7, 6))
    ax = ax or fig.add_subplot()
    for i, j in pairs:
        ax.plot(*coords[[i, j]].T, color="grey", lw=0.4, alpha=0.4, zorder=1)
    classes = sorted(set(labels)) if labels is not None else [None]
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    modality = np.asarray(modality)
    for c, cls in enumerate(classes):
        for k, (kind, marker) in enumerate((("image", "o"), ("text", "^"))):
            mask = modality == kind
            if labels is not None:
                mask &= np.asarray(labels) == cls
            if labels is None:
                colour = cmap(k)  # colour by modality
            elif palette is not None and cls in palette:
                colour = palette[cls]
            else:
                colour = cmap(c % cmap.N)
            if mask.any():
                name = f"{kind}" + (f" · {cls}" if cls is not None else "")
                ax.scatter(
                    *coords[mask].T,
                    s=14,
                    marker=marker,
                    color=colour,
                    label=name if c < 10 else None,
                    alpha=0.8,
                    zorder=2,
                    edgecolors="black" if kind == "text" else "#777777",
                    linewidths=0.3,
                )
    if thumbnails:
        items = list(thumbnails.items())
        for (i, _), image in zip(items, load_rgb_images([im for _, im in items])):
            ax.add_artist(
                AnnotationBbox(
                    OffsetImage(_thumb(image, 32), zoom=0.6),
                    coords[i],
                    frameon=False,
                    zorder=3,
                )
            )
    ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig
