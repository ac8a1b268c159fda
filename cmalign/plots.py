"""Pictures for the lessons: similarity heatmaps, image grids, curves, embedding maps,
and a diagram of CLIP's two towers and logit matrix.

Every function draws with matplotlib and returns the Figure (nothing is shown
or saved behind your back). Used throughout the notebooks. The module passes 300 lines because it
holds one idea, the lessons' pictures (one function per kind of figure, sharing
the thumbnail and legend helpers); it is a candidate to split by figure kind.
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


def wrap_title(title: str, width: int = 24) -> str:
    """``title`` wrapped at ``width`` characters, keeping its own line breaks."""
    return "\n".join(textwrap.fill(line, width) if line else "" for line in str(title).split("\n"))


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
    fig, axes = plt.subplots(  # constrained: titles and a suptitle get room of their own
        nrows, ncols, figsize=(size * ncols, size * nrows + 0.3), squeeze=False,
        layout="constrained",
    )
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= len(rgb):
            ax.axis("off")
            continue
        ax.imshow(rgb[i])
        if titles is not None:
            ax.set_title(wrap_title(titles[i]), fontsize=8)
        if highlight is not None:
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:green" if highlight[i] else "tab:red")
                spine.set_linewidth(3)
    if suptitle:
        fig.suptitle(suptitle)
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


_MARKERS = (("image", "o"), ("text", "^"), ("sound", "s"))


def embedding_map(
    coords: np.ndarray,
    modality: Sequence[str],
    labels: Sequence[str] | None = None,
    pairs: Sequence[tuple[int, int]] = (),
    thumbnails: Mapping[int, ImageLike] | None = None,
    title: str = "",
    ax: plt.Axes | None = None,
    palette: Mapping[str, Sequence[float]] | None = None,
    *,
    xlabel: str = "",
    ylabel: str = "",
    legend_outside: bool = False,
) -> Figure:
    """2-D scatter of image and text embeddings (UMAP or PCA coordinates).

    Parameters
    ----------
    coords : array of shape (n_points, 2)
    modality : sequence of "image" / "text" / "sound", one per point
        (marker shape: circle, triangle, square; "sound" for
        notebooks/10_third_modality_audio.ipynb)
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
    xlabel, ylabel : str
        Axis names (e.g. "PC 1 (23 % of variance)"); the ticks stay hidden,
        since the units of a 2-D projection mean nothing on their own.
    legend_outside : bool
        Put the legend to the right of the axes, where it hides no point.
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
        for k, (kind, marker) in enumerate(_MARKERS):
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
    if legend_outside:
        ax.legend(
            fontsize=8, markerscale=1.5, loc="upper left", bbox_to_anchor=(1.02, 1)
        )
    else:
        ax.legend(fontsize=7, markerscale=1.5, loc="best", ncol=2)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return fig
def two_towers(
    image: ImageLike | None = None,
    caption: str | None = None,
    logits: torch.Tensor | None = None,
) -> Figure:
    """A diagram of CLIP: two towers, one space, and the batch's logit matrix.

    An image goes through the vision tower and a caption through the text
    tower; each is projected into the shared space and normalised; the
    scaled cosines of a batch form the (n_images, n_texts) matrix whose
    diagonal holds the matching pairs. Drawn with matplotlib only.

    Parameters
    ----------
    image : image, optional
        Drawn as the vision tower's input.
    caption : str, optional
        Written as the text tower's input.
    logits : torch.Tensor of shape (n, n), optional
        A real ``logits_per_image`` (rows images, columns texts), drawn as the
        matrix with its values; default: a blank 4 x 4 grid.

    Taught in notebooks/01_clip_embeddings.ipynb.
    """
    from matplotlib.patches import FancyBboxPatch, Rectangle

    fig, ax = plt.subplots(figsize=(12, 4.6))
    ax.set_xlim(0, 12.4)
    ax.set_ylim(-0.4, 5.0)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, colour: str) -> None:
        ax.add_patch(
            FancyBboxPatch(
                (x, y), w, h, boxstyle="round,pad=0.06", fc=colour, ec="#333333"
            )
        )
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)

    def arrow(start: tuple[float, float], end: tuple[float, float]) -> None:
        ax.annotate(
            "", xy=end, xytext=start, arrowprops={"arrowstyle": "->", "lw": 1.2}
        )

    towers = (
        (
            3.3,
            "image $x$",
            "vision transformer $f_I$\n(pixels cut into patches)",
            "$W_I$",
            "$u = W_I f_I(x)\\,/\\,\\|W_I f_I(x)\\|$",
            "#dbe9f6",
        ),
        (
            0.5,
            "text $y$",
            "text transformer $f_T$\n(BPE tokens, causal)",
            "$W_T$",
            "$v = W_T f_T(y)\\,/\\,\\|W_T f_T(y)\\|$",
            "#fde3cf",
        ),
    )
    for y, source, tower, projection, output, colour in towers:
        box(
            0.1,
            y,
            1.5,
            1.0,
            ""
            if (source.startswith("image") and image is not None)
            or (source.startswith("text") and caption)
            else source,
            "white",
        )
        box(2.1, y, 2.4, 1.0, tower, colour)
        box(5.0, y, 0.8, 1.0, projection + "\nprojection", colour)
        box(6.3, y, 1.7, 1.0, output, colour)
        for x0, x1 in ((1.66, 2.04), (4.56, 4.94), (5.86, 6.24)):
            arrow((x0, y + 0.5), (x1, y + 0.5))
    if image is not None:
        thumb = _thumb(load_rgb_images([image])[0], 48)
        ax.add_artist(
            AnnotationBbox(OffsetImage(thumb, zoom=1.0), (0.85, 3.8), frameon=False)
        )
    if caption:
        ax.text(
            0.85,
            1.0,
            textwrap.fill(caption, 16),
            ha="center",
            va="center",
            fontsize=8,
            style="italic",
        )
    ax.text(
        4.05,
        2.4,
        "one shared space $\\mathbb{R}^d$, unit vectors",
        ha="center",
        va="center",
        fontsize=9,
        color="#555555",
    )

    values = None if logits is None else torch.as_tensor(logits).float().cpu().numpy()
    n = 4 if values is None else len(values)
    left, bottom, size = 8.9, 0.6, 3.4
    cell = size / n
    cmap = plt.get_cmap("viridis")
    for i in range(n):  # row i: image i
        for j in range(n):  # column j: text j
            if values is None:
                face = "#f2f2f2"
            else:
                lo, hi = values.min(), values.max()
                face = cmap((values[i, j] - lo) / (hi - lo + 1e-12))
            x, y = left + j * cell, bottom + (n - 1 - i) * cell
            ax.add_patch(Rectangle((x, y), cell, cell, fc=face, ec="white"))
            if values is not None and n <= 6:
                ax.text(
                    x + cell / 2,
                    y + cell / 2,
                    f"{values[i, j]:.1f}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if values[i, j] < values.mean() else "black",
                )
            elif values is None:
                ax.text(
                    x + cell / 2,
                    y + cell / 2,
                    f"$s\\,u_{i + 1}^\\top v_{j + 1}$",
                    ha="center",
                    va="center",
                    fontsize=8,
                )
        x, y = left + i * cell, bottom + (n - 1 - i) * cell
        ax.add_patch(Rectangle((x, y), cell, cell, fill=False, ec="tab:red", lw=2))
    ax.text(
        left + size / 2, bottom + size + 0.15, "texts $v_j$", ha="center", fontsize=9
    )
    ax.text(
        left + size / 2,
        bottom + size + 0.6,
        "logits_per_image = $s\\,UV^\\top$ (rows: images, columns: texts)",
        ha="center",
        fontsize=9,
    )
    ax.text(
        left + size / 2,
        bottom - 0.3,
        "red: the matching pairs; softmax along a row = image→text, "
        "down a column = text→image",
        ha="center",
        va="top",
        fontsize=8,
        wrap=True,
    )
    arrow((8.06, 3.8), (left - 0.1, bottom + size * 0.75))
    arrow((8.06, 1.0), (left + size * 0.25, bottom - 0.08))
    ax.text(
        left - 0.2,
        bottom + size / 2,
        "images $u_i$",
        rotation=90,
        ha="right",
        va="center",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def spread_out(coords: np.ndarray, k: int, *, start: int = 0) -> list[int]:
    """Indices of ``k`` points far apart in a 2-D map (greedy farthest-point
    sampling from point ``start``), so thumbnails drawn at them overlap little.

    Parameters
    ----------
    coords : array of shape (n_points, 2)
    k : int
        How many points (at most n_points).

    Returns
    -------
    list of int

    Used for the thumbnails of notebooks/04_shared_space_umap.ipynb.
    """
    coords = np.asarray(coords, dtype=float)
    chosen = [start]
    nearest = np.linalg.norm(coords - coords[start], axis=1)
    while len(chosen) < min(k, len(coords)):
        chosen.append(int(nearest.argmax()))
        distance = np.linalg.norm(coords - coords[chosen[-1]], axis=1)
        nearest = np.minimum(nearest, distance)
    return chosen
