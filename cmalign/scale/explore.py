"""The interactive map drawn from an index: a stated sample of points, neighbours from all of it.

A map of millions of points would not open in a browser, and UMAP of them
would take hours; :func:`index_map` draws a uniform random sample (2,000
points by default, the number, the collection size and the seed written in
the title) in 2-D (PCA by default, UMAP on request), and each point's hover
lists its nearest neighbours **in the whole index** (found with
:meth:`cmalign.scale.search.ScaleIndex.search`, the point itself left out),
with their keys, captions and cosines — so what the hover says is true of
the collection, not of the sample. The page is Bokeh's, like
:func:`cmalign.interactive.interactive_map`, and is returned as its
:class:`~cmalign.interactive.InteractiveMap` (``.save("map.html")``).
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import torch
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

from ..interactive import InteractiveMap, _thumbnail
from .search import ScaleIndex


def _coords(vectors: torch.Tensor, method: str, seed: int) -> np.ndarray:
    if method == "pca":
        centred = vectors - vectors.mean(dim=0)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        return (centred @ v[:2].T).numpy()
    if method == "umap":
        import umap

        return umap.UMAP(random_state=seed, metric="cosine").fit_transform(vectors.numpy())
    raise ValueError(f"coords must be 'pca' or 'umap', got {method!r}")


def _label(keys, captions, j: int) -> str:
    caption = captions[j] if captions is not None and captions[j] else ""
    if len(caption) > 40:
        caption = caption[:39] + "…"  # a cut caption says it was cut
    return f"{keys[j]}" + (f" ({caption})" if caption else "")


def index_map(index: ScaleIndex, *, sample: int = 2000, k: int = 5, seed: int = 0,
              coords: str = "pca", images: Sequence | None = None,
              thumb_size: int = 40) -> InteractiveMap:
    """A hoverable map of ``sample`` random points of ``index``.

    Parameters
    ----------
    index : ScaleIndex
        From :func:`cmalign.scale.open_index`.
    sample : int
        Points drawn (uniformly at random, without replacement); all if fewer.
    k : int
        Neighbours from the whole index listed per point.
    images : sequence aligned with the index rows, optional
        ``images[row]`` is shown as the thumbnail (paths, PIL images, or
        :class:`cmalign.scale.wds_benchmark.TarImages`).

    Returns
    -------
    InteractiveMap
        ``neighbours["rows"]``: (sample, k) int64 rows of the whole index.
    """
    n = len(index)
    rows = np.sort(np.random.default_rng(seed).choice(n, size=min(sample, n), replace=False))
    vectors = index.reconstruct(rows)
    hits = index.search(vectors=vectors, k=min(k + 1, n))
    found = hits.indices.numpy()
    keep = np.array([[j for j in line if j != row][:k] for line, row in zip(found, rows)])
    meta = index._meta
    keys, captions = meta["key"], meta.get("caption")
    score_of = {(int(r), int(j)): float(s) for r, line_ids, line_s in
                zip(rows, found, hits.scores.numpy()) for j, s in zip(line_ids, line_s)}
    xy = _coords(vectors, coords, seed)
    neighbours = ["<br>".join(f"{score_of[(int(r), int(j))]:.3f} {html.escape(_label(keys, captions, int(j)))}"
                              for j in line) for r, line in zip(rows, keep)]
    data = {"x": xy[:, 0], "y": xy[:, 1], "row": rows.tolist(),
            "key": [html.escape(str(keys[r])) for r in rows],
            "caption": [html.escape(str(captions[r] or "")) if captions is not None else "" for r in rows],
            "neighbours": neighbours,
            "thumb": ([f"<img src='{_thumbnail(images[int(r)], thumb_size)}' width='{2 * thumb_size}'>"
                       for r in rows] if images is not None else [""] * len(rows))}
    title = (f"{len(rows):,} of {n:,} points (uniform random sample, seed {seed}); "
             f"hover: {k} nearest neighbours in the whole index")
    source = ColumnDataSource(data)
    plot = figure(width=760, height=620, title=title, tools="pan,wheel_zoom,box_zoom,reset,save",
                  match_aspect=True)
    plot.axis.visible = plot.grid.visible = False
    points = plot.scatter("x", "y", source=source, size=6, fill_alpha=0.7)
    plot.add_tools(HoverTool(renderers=[points], tooltips=(
        "<div style='max-width:320px'>@thumb{safe}<div><b>@key</b> @caption{safe}</div>"
        "<div>nearest in the whole index:</div><div>@neighbours{safe}</div></div>")))
    return InteractiveMap(plot, source, {"rows": torch.from_numpy(keep)}, title)
