"""An interactive map of both modalities: hover for thumbnails, captions and neighbours.

:func:`interactive_map` draws images and texts in one 2-D map (UMAP or PCA
coordinates handed in). Hovering an image point shows its thumbnail, a text
point its caption; both list their nearest neighbours *of the other
modality in the full embedding space* (not in the distorted 2-D map), with
cosines. Clicking a point highlights those neighbours (orange) and its true
pairs (green); a toggle shows the image–caption links, a switch colours by
modality or by label.

Library choice: Bokeh, the library umap-learn's own ``umap.plot.interactive``
uses. Its tooltips accept HTML, so a thumbnail is an ``<img>`` with the
picture inlined, and a page can be written with BokehJS inlined
(``resources=INLINE``): the map works in JupyterLab, in ``make html`` exports
and as one standalone file, with no kernel and no network. Everything the
page shows is precomputed here; the only JavaScript is two small callbacks.
Taught in notebooks/04_shared_space_umap.ipynb (and the failure explorer of
notebooks/05_retrieval_evaluation.ipynb).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    HoverTool,
    RadioButtonGroup,
    TapTool,
    Toggle,
)
from bokeh.palettes import Category10, Category20
from bokeh.plotting import figure
from bokeh.resources import INLINE

from .images import ImageLike, load_rgb_images
from .retrieval import search
from .utils import check_embeddings

MAX_POINTS = 20_000
MODALITY_COLOURS = {"image": "#1f77b4", "text": "#ff7f0e"}
# Click: ring the chosen point's neighbours (orange) and true pairs (green).
_TAP_JS = """
const i = src.selected.indices[0], d = src.data;
const ids = i === undefined ? [] : d.nn_ids[i].concat(d.pair_ids[i]);
marks.data = {x: ids.map(j => d.x[j]), y: ids.map(j => d.y[j]),
              colour: ids.map(j => d.pair_ids[i].includes(j) ? 'green' : 'orange')};
"""
# Switch: colour the points by modality or by label.
_COLOUR_JS = """
src.data.colour = (this.active === 0 ? src.data.by_modality : src.data.by_label).slice();
src.change.emit();
"""


def _thumbnail(image, size: int) -> str:
    """A small JPEG of ``image`` as a data URI (about 1-2 kB at 40 px)."""
    image = image.copy()
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=75)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


def _hex(colour) -> str:
    """A colour name / hex string as is; an RGB triple (0-1 or 0-255) as hex."""
    if isinstance(colour, str):
        return colour
    rgb = np.asarray(colour, dtype=float)[:3]
    rgb = rgb * 255 if rgb.max() <= 1 else rgb
    return "#" + "".join(f"{int(round(v)):02x}" for v in rgb)


def _neighbour_html(scores, indices, names: Sequence[str]) -> str:
    """ "0.871 a red circle<br>..." (captions cut at 50 characters)."""
    return "<br>".join(
        f"{s:.3f} {html.escape(names[j][:50])}"
        for s, j in zip(scores.tolist(), indices.tolist())
    )


def _check(coords, image_emb, text_emb, images, captions, labels, max_points):
    coords = np.asarray(coords, dtype=float)
    n_images, n_texts = len(images), len(captions)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise ValueError(f"coords must have shape (n_points, 2), got {coords.shape}")
    if len(coords) != n_images + n_texts:
        raise ValueError(
            f"coords has {len(coords)} rows but there are {n_images} images + "
            f"{n_texts} captions = {n_images + n_texts} points (images first)"
        )
    if len(coords) > max_points:
        raise ValueError(
            f"{len(coords)} points exceed max_points={max_points}: the page would be "
            "too large to open comfortably. Map a random subset of images and "
            "captions, or raise max_points."
        )
    if not np.isfinite(coords).all():
        row_ = int(np.argwhere(~np.isfinite(coords))[0][0])
        raise ValueError(f"coords row {row_} contains NaN or inf")
    image_emb = check_embeddings(image_emb, "image_emb")
    text_emb = check_embeddings(text_emb, "text_emb")
    if len(image_emb) != n_images or len(text_emb) != n_texts:
        raise ValueError(
            f"image_emb has {len(image_emb)} rows for {n_images} images and "
            f"text_emb {len(text_emb)} rows for {n_texts} captions"
        )
    if labels is not None and len(labels) != len(coords):
        raise ValueError(f"labels has {len(labels)} entries for {len(coords)} points")
    return coords, image_emb, text_emb


class InteractiveMap:
    """A built map: ``html`` (a standalone page), ``save(path)``, and the data
    it shows (``source``: one row per point; ``neighbours``), for checking.
    Displayed in a notebook as an isolated frame."""

    def __init__(self, layout, source: ColumnDataSource, neighbours: dict, title: str):
        self.layout, self.source, self.neighbours = layout, source, neighbours
        self.html = file_html(layout, INLINE, title or "cmalign map")

    def save(self, path: str | Path) -> Path:
        """Write the map as one self-contained HTML file (no network needed)."""
        path = Path(path)
        path.write_text(self.html, encoding="utf-8")
        return path

    def _repr_html_(self) -> str:
        doc = html.escape(self.html, quote=True)
        return (
            f'<iframe srcdoc="{doc}" style="width:100%;height:760px;border:0" '
            'title="interactive map"></iframe>'
        )


def interactive_map(
    coords: np.ndarray,
    image_emb: torch.Tensor,
    text_emb: torch.Tensor,
    images: Sequence[ImageLike],
    captions: Sequence[str],
    pairs: Sequence[tuple[int, int]] = (),
    labels: Sequence[str] | None = None,
    k: int = 5,
    thumb_size: int = 40,
    palette: dict | None = None,
    title: str = "",
    max_points: int = MAX_POINTS,
) -> InteractiveMap:
    """Both modalities in one hoverable, clickable 2-D map.

    Parameters
    ----------
    coords : array of shape (n_images + n_texts, 2)
        2-D positions, images first, then texts (e.g. one UMAP fit of
        ``torch.cat([image_emb, text_emb])``).
    image_emb : torch.Tensor of shape (n_images, dim), L2-normalised
    text_emb : torch.Tensor of shape (n_texts, dim), L2-normalised
    images : sequence of paths, PIL images or arrays, one per image point
    captions : sequence of str, one per text point
    pairs : sequence of (image index, text index)
        True image–caption pairs: drawn as links, highlighted on click.
    labels : sequence of str of length n_images + n_texts, optional
        A class per point, for the "colour by label" switch.
    k : int
        Cross-modal neighbours listed per point, by exact cosine search.
    thumb_size : int
        Thumbnail side in pixels (JPEG, inlined in the page).
    palette : dict label -> colour, optional
        Colours for labels (default: a qualitative palette).
    max_points : int
        Larger maps raise a ValueError (the page would be too big).

    Returns
    -------
    InteractiveMap
        Shows itself in JupyterLab; ``.save("map.html")`` writes a standalone page.
    """
    coords, image_emb, text_emb = _check(
        coords, image_emb, text_emb, images, captions, labels, max_points
    )
    n_images, n_texts = len(images), len(captions)
    for i, j in pairs:
        if not (0 <= i < n_images and 0 <= j < n_texts):
            raise ValueError(f"pair ({i}, {j}) is out of range")
    captions = list(captions)
    i_scores, i_idx = search(image_emb, text_emb, k=min(k, n_texts))  # image -> texts
    t_scores, t_idx = search(text_emb, image_emb, k=min(k, n_images))  # text -> images
    first_caption = {i: captions[j] for i, j in reversed(list(pairs))}
    image_names = [  # "image 12 (a red circle…)" when the image has a caption
        f"image {i}" + (f" ({first_caption[i][:30]})" if i in first_caption else "")
        for i in range(n_images)
    ]
    thumbs = [_thumbnail(im, thumb_size) for im in load_rgb_images(images)]

    partners: list[list[int]] = [[] for _ in range(n_images + n_texts)]
    for i, j in pairs:
        partners[i].append(n_images + j)
        partners[n_images + j].append(i)
    labels = (
        list(labels)
        if labels is not None
        else ["image"] * n_images + ["text"] * n_texts
    )
    classes = sorted(set(labels))
    colours = palette or {}
    cycle = Category10[10] if len(classes) <= 10 else Category20[20]
    by_label = [
        _hex(colours.get(c, cycle[classes.index(c) % len(cycle)])) for c in labels
    ]
    data = {
        "x": coords[:, 0],
        "y": coords[:, 1],
        "kind": ["image"] * n_images + ["text"] * n_texts,
        "index": list(range(n_images)) + list(range(n_texts)),
        "label": labels,
        "marker": ["circle"] * n_images + ["triangle"] * n_texts,
        "thumb": [f"<img src='{t}' width='{thumb_size * 2}'>" for t in thumbs]
        + [""] * n_texts,
        "text": [""] * n_images + [html.escape(c) for c in captions],
        "other": ["captions"] * n_images + ["images"] * n_texts,
        "neighbours": [_neighbour_html(s, j, captions) for s, j in zip(i_scores, i_idx)]
        + [_neighbour_html(s, j, image_names) for s, j in zip(t_scores, t_idx)],
        "nn_ids": [(n_images + j).tolist() for j in i_idx]
        + [j.tolist() for j in t_idx],
        "pair_ids": partners,
        "by_modality": [
            MODALITY_COLOURS[m] for m in ["image"] * n_images + ["text"] * n_texts
        ],
        "by_label": by_label,
    }
    data["colour"] = list(data["by_modality"])
    source = ColumnDataSource(data)
    tools = "pan,wheel_zoom,box_zoom,reset,save"
    plot = figure(width=760, height=620, title=title, tools=tools, match_aspect=True)
    plot.axis.visible = plot.grid.visible = False
    xs = [[coords[i, 0], coords[n_images + j, 0]] for i, j in pairs]
    ys = [[coords[i, 1], coords[n_images + j, 1]] for i, j in pairs]
    links = plot.multi_line(xs, ys, line_color="grey", line_alpha=0.35, visible=False)
    style = {"fill_color": "colour", "line_color": "#444444", "fill_alpha": 0.8}
    points = plot.scatter(
        "x", "y", source=source, marker="marker", size=8, legend_field="kind", **style
    )
    marks = ColumnDataSource({"x": [], "y": [], "colour": []})  # the click highlight
    plot.scatter(
        "x",
        "y",
        source=marks,
        size=16,
        fill_alpha=0,
        line_width=2.5,
        line_color="colour",
    )
    plot.add_tools(
        HoverTool(
            renderers=[points],
            tooltips="<div style='max-width:300px'>@thumb{safe}<div><b>@kind @index</b>"
            " @text{safe}</div><div>nearest @other (full space):</div>"
            "<div>@neighbours{safe}</div></div>",
        ),
        TapTool(renderers=[points]),
    )
    tap = CustomJS(args={"src": source, "marks": marks}, code=_TAP_JS)
    source.selected.js_on_change("indices", tap)
    toggle = Toggle(label="show image–caption links", active=False)
    toggle.js_link("active", links, "visible")
    colour_by = RadioButtonGroup(
        labels=["colour by modality", "colour by label"], active=0
    )
    colour_by.js_on_change("active", CustomJS(args={"src": source}, code=_COLOUR_JS))
    layout = column(row(toggle, colour_by), plot)
    neighbours = {"image_to_text": i_idx, "text_to_image": t_idx}
    return InteractiveMap(layout, source, neighbours, title)
