"""A judge that is not CLIP: read an image as the nearest scene the world can draw.

An image made by optimising a CLIP score cannot be judged by that CLIP (it was
optimised to please it), and freely made pixels have no ground truth. This
judge stands in for "what a person would say" with no learning at all:

1. the object pixels are the bright ones (every colour of the world has a
   channel above 200/255; backgrounds stay far below): threshold them;
2. count the connected blobs;
3. for a single blob, the colour is the named colour nearest to its mean
   RGB, and the shape, size and centre are those of the world's template
   (:func:`cmalign.toy.soft_draw.shape_distances`) that overlaps it best;
   the positions are those whose placement range holds that centre (the
   world's ranges overlap in the corners, where both sides are right).

It reads the usual world (no clutter). Its accuracy on fresh rendered scenes
is measured (:func:`judge_accuracy`);
on images unlike the world's it reports the nearest drawable reading, which is
exactly the question "is this a picture of the prompt?".
Taught in notebooks/09_generation.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from .soft_draw import shape_distances
from .spec import COLORS, IMAGE_SIZE, POSITIONS, SHAPES, SIZES
from .world import make_dataset

THRESHOLD = 0.6  # an object pixel has some channel above this (about 153/255)
_MIN_BLOB = 4  # pixels; smaller specks are noise


def to_tensor(images: Sequence[Image.Image]) -> torch.Tensor:
    """PIL images -> float tensor of shape (n, 3, H, W) with values in [0, 1]."""
    return (
        torch.stack(
            [
                torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
                for im in images
            ]
        ).float()
        / 255
    )


_KERNEL = 25  # template window, odd; holds the largest shape
_PHASES = ((0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.5, 0.5))
#: Where the world places a lone object (world._sample_image): centre ranges in
#: pixels, (x range, y range). Corners overlap: an object at (12, 11) may be
#: "on the left" or "at the top", so a reading keeps every position that fits.
_NEAR, _FAR = (10.0, 13.0), (IMAGE_SIZE - 13.0, IMAGE_SIZE - 10.0)
_MID = (0.27 * IMAGE_SIZE, 0.73 * IMAGE_SIZE)
POSITION_RANGES = {
    "left": (_NEAR, _MID),
    "right": (_FAR, _MID),
    "top": (_MID, _NEAR),
    "bottom": (_MID, _FAR),
}


def _templates() -> torch.Tensor:
    """Masks (n_shapes * n_sizes * n_phases, 1, K, K) of every shape and size of
    the world, centred half a pixel apart (the phases) at the window's middle."""
    u = torch.arange(_KERNEL, dtype=torch.float32) - _KERNEL // 2
    kernels = []
    for shape in range(len(SHAPES)):
        for size in SIZES.values():
            for px, py in _PHASES:
                dx, dy = torch.broadcast_tensors(u[None, :] - px, u[:, None] - py)
                sd = shape_distances(dx, dy, torch.tensor(size / 2))[shape]
                kernels.append((sd < 0).float())
    return torch.stack(kernels)[:, None]


def positions_at(x: float, y: float, *, tolerance: float = 1.0) -> list[str]:
    """Every position whose placement range (``POSITION_RANGES``, widened by
    ``tolerance`` px) holds the centre (x, y); the nearest one when none does."""

    def gap(p: str) -> float:
        (x0, x1), (y0, y1) = POSITION_RANGES[p]
        return max(x0 - x, 0, x - x1) + max(y0 - y, 0, y - y1)

    fits = [p for p in POSITIONS if gap(p) <= tolerance]
    return fits or [min(POSITIONS, key=gap)]


def read_scenes(images: torch.Tensor) -> list[dict]:
    """What the judge sees in each image.

    Parameters
    ----------
    images : torch.Tensor of shape (n, 3, IMAGE_SIZE, IMAGE_SIZE), values in [0, 1]

    Returns
    -------
    list of n dicts: ``count`` (blobs found) and, when there is exactly one,
    its ``color``, ``shape``, ``size``, ``center`` and ``positions`` (every
    position it fits, see :func:`positions_at`); else those are None.
    """
    if images.ndim != 4 or images.shape[1:] != (3, IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(
            f"images must have shape (n, 3, {IMAGE_SIZE}, {IMAGE_SIZE}), "
            f"got {tuple(images.shape)}"
        )
    images = images.detach().float().cpu()
    palette = torch.tensor([COLORS[c] for c in COLORS], dtype=torch.float32) / 255
    kernels = _templates()
    kernel_area = kernels.flatten(1).sum(1)[:, None, None]
    size_names = list(SIZES)
    readings = []
    for image in images:
        bright = (image.max(0).values > THRESHOLD).numpy()
        labels, n = ndimage.label(bright)
        areas = ndimage.sum(bright, labels, range(1, n + 1))
        blobs = [k + 1 for k, a in enumerate(areas) if a >= _MIN_BLOB]
        reading = {
            "count": len(blobs),
            "color": None,
            "shape": None,
            "size": None,
            "center": None,
            "positions": None,
        }
        if len(blobs) == 1:
            mask = torch.from_numpy(labels == blobs[0]).float()
            rgb = image[:, mask.bool()].mean(1)
            reading["color"] = list(COLORS)[int((palette - rgb).norm(dim=1).argmin())]
            # slide every template over the blob: overlap at every centre at once
            inter = torch.nn.functional.conv2d(
                mask[None, None], kernels, padding=_KERNEL // 2
            )[0]
            iou = inter / (kernel_area + mask.sum() - inter)  # (kernels, H, W)
            k, y, x = np.unravel_index(int(iou.argmax()), iou.shape)
            shape, rest = divmod(k, len(SIZES) * len(_PHASES))
            size, phase = divmod(rest, len(_PHASES))
            cx, cy = x + 0.5 + _PHASES[phase][0], y + 0.5 + _PHASES[phase][1]
            reading.update(
                shape=SHAPES[shape],
                size=size_names[size],
                center=(cx, cy),
                positions=positions_at(cx, cy),
            )
        readings.append(reading)
    return readings


def agrees(reading: dict, spec: dict) -> bool:
    """True when the judge's reading matches every attribute a one-object caption
    spec states (attributes left out, None, are not checked)."""
    if len(spec["objects"]) != 1:
        raise ValueError("the judge reads one-object captions only")
    stated = spec["objects"][0]
    if reading["count"] != 1:
        return False
    if stated.get("position") and stated["position"] not in reading["positions"]:
        return False
    return all(stated.get(k) in (None, reading[k]) for k in ("color", "shape", "size"))


def scene_fits(spec: dict, scene: dict) -> bool:
    """Would the world accept ``scene`` (attributes with a ``center``) as a
    picture of the one-object caption ``spec``? The same colour, shape and
    size, and the centre inside the placement range of the stated position
    (corners count for both of their sides, see :func:`positions_at`)."""
    if len(spec["objects"]) != 1 or len(scene["objects"]) != 1:
        return False
    stated, drawn = spec["objects"][0], scene["objects"][0]
    if any(stated.get(k) not in (None, drawn[k]) for k in ("color", "shape", "size")):
        return False
    return not stated.get("position") or stated["position"] in positions_at(
        *drawn["center"]
    )


def judge_accuracy(*, n_images: int = 300, seed: int = 99) -> dict[str, np.ndarray]:
    """Per-image correctness of the judge on fresh rendered test scenes.

    Returns
    -------
    dict name -> bool array: ``count`` over all scenes; ``color``, ``shape``,
    ``size``, ``position`` and ``all`` (every one right, count included) over
    the one-object scenes.
    """
    data = make_dataset(n_images, seed=seed, split="test")
    readings = read_scenes(to_tensor(data.images))
    truth = [len(a["objects"]) for a in data.attributes]
    out = {"count": np.array([r["count"] == t for r, t in zip(readings, truth)])}
    single = [i for i, t in enumerate(truth) if t == 1]
    for k in ("color", "shape", "size"):
        out[k] = np.array(
            [readings[i][k] == data.attributes[i]["objects"][0][k] for i in single]
        )
    out["position"] = np.array(
        [
            data.attributes[i]["objects"][0]["position"]
            in (readings[i]["positions"] or [])
            for i in single
        ]
    )
    out["all"] = out["count"][single] & np.all(
        [out[k] for k in ("color", "shape", "size", "position")], axis=0
    )
    return out
