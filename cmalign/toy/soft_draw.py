"""The world's drawing made differentiable: soft shapes whose position, size,
colour and kind are tensors a gradient can move.

:mod:`.draw` paints with PIL, which has no gradient. Here every shape is a
signed distance ``sd(p)`` (negative inside, in pixels) and its mask a sigmoid
``sigmoid(-sd / softness)``, so the edge is a smooth ramp about one pixel wide,
as the world's 4x supersampled edges are. The kind of shape is a softmax
mixture over the world's five masks, so even "which shape" has a gradient.
:func:`snap` turns parameters back into a scene the world can draw and judge
(:func:`cmalign.toy.world.relevance_matrix`). CLIPDraw (Frans et al. 2022)
optimises strokes the same way. Taught in notebooks/09_generation.ipynb.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .spec import COLORS, IMAGE_SIZE, POSITIONS, SHAPES, SIZES

#: Where the world puts a lone object at each position (the middle of its range).
POSITION_CENTERS = {
    "left": (11.5, 20.0),
    "right": (28.5, 20.0),
    "top": (20.0, 11.5),
    "bottom": (20.0, 28.5),
}
_STAR_ANGLES = [math.pi / 2 + k * math.pi / 5 for k in range(10)]
_STAR_RADII = [1.0 if k % 2 == 0 else 0.42 for k in range(10)]


@dataclass
class SceneParams:
    """Unconstrained parameters of ``n`` images with ``k`` soft objects each.

    Attributes
    ----------
    center : torch.Tensor of shape (n, k, 2)
        Logits of (x, y); the centre is ``IMAGE_SIZE * sigmoid(center)`` pixels.
    size : torch.Tensor of shape (n, k)
        Logit of the diameter, mapped to 6..22 px (the world draws 10 and 18).
    color : torch.Tensor of shape (n, k, 3)
        Logits of RGB in [0, 1].
    shape : torch.Tensor of shape (n, k, len(SHAPES))
        Logits of the mixture over the world's shapes.
    """

    center: torch.Tensor
    size: torch.Tensor
    color: torch.Tensor
    shape: torch.Tensor

    def tensors(self) -> list[torch.Tensor]:
        """The four tensors, e.g. to hand to an optimiser."""
        return [self.center, self.size, self.color, self.shape]

    def centers(self) -> torch.Tensor:
        """Centres in pixels, shape (n, k, 2)."""
        return IMAGE_SIZE * torch.sigmoid(self.center)

    def diameters(self) -> torch.Tensor:
        """Diameters in pixels, shape (n, k)."""
        return 6.0 + 16.0 * torch.sigmoid(self.size)


def init_params(
    n: int, k: int = 1, *, generator: torch.Generator | None = None
) -> SceneParams:
    """A neutral start: grey objects of middle size at random places (centres
    uniform over the middle 60 % of the image), every shape equally likely.
    ``requires_grad`` is set on every tensor."""
    g = generator
    params = SceneParams(
        center=torch.logit(0.2 + 0.6 * torch.rand(n, k, 2, generator=g)),
        size=torch.zeros(n, k),
        color=0.1 * torch.randn(n, k, 3, generator=g),
        shape=torch.zeros(n, k, len(SHAPES)),
    )
    for t in params.tensors():
        t.requires_grad_(True)
    return params


def params_for(scenes: list[dict]) -> SceneParams:
    """Parameters that draw the given scenes (the inverse of :func:`snap`): each
    object at its centre, its size, its named colour and (almost) surely its shape.

    Parameters
    ----------
    scenes : list of n attribute dicts (``ToyDataset.attributes`` format), all
        with the same number k of objects, each with ``center``.

    Returns
    -------
    SceneParams of n images with k objects, without gradients.
    """
    k = len(scenes[0]["objects"])
    if any(len(s["objects"]) != k for s in scenes):
        raise ValueError("scenes must all have the same number of objects")
    objects = [o for s in scenes for o in s["objects"]]
    center = torch.tensor([o["center"] for o in objects], dtype=torch.float32)
    size = torch.tensor([(SIZES[o["size"]] - 6.0) / 16 for o in objects])
    rgb = torch.tensor([COLORS[o["color"]] for o in objects], dtype=torch.float32) / 255
    shape = torch.full((len(objects), len(SHAPES)), -20.0)
    shape[torch.arange(len(objects)), [SHAPES.index(o["shape"]) for o in objects]] = (
        20.0
    )
    return SceneParams(
        center=torch.logit(center / IMAGE_SIZE).view(-1, k, 2),
        size=torch.logit(size).view(-1, k),
        color=torch.logit(rgb.clamp(0.02, 0.98)).view(-1, k, 3),
        shape=shape.view(-1, k, len(SHAPES)),
    )


def _star_radius(theta: torch.Tensor) -> torch.Tensor:
    """Distance from the centre to the star's edge along angle ``theta``, for a
    star of unit outer radius (the polygon of :mod:`.draw`)."""
    step = math.pi / 5
    rel = torch.remainder(theta - _STAR_ANGLES[0], 2 * math.pi)
    sector = torch.clamp((rel / step).long(), max=9)
    a1 = _STAR_ANGLES[0] + sector * step
    q = torch.tensor(_STAR_RADII, device=theta.device)
    q1, q2 = q[sector], q[(sector + 1) % 10]
    t = rel + _STAR_ANGLES[0]  # theta, unwrapped into the sector
    return (
        q1
        * q2
        * math.sin(step)
        / (q1 * torch.sin(t - a1) + q2 * torch.sin(a1 + step - t))
    )


def shape_distances(
    dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor
) -> torch.Tensor:
    """Signed distance (pixels, negative inside) to each of the world's shapes.

    Parameters
    ----------
    dx, dy : torch.Tensor of shape (..., H, W)
        Pixel centre minus shape centre (y grows downwards).
    r : torch.Tensor broadcastable to dx
        Half the diameter.

    Returns
    -------
    torch.Tensor of shape (len(SHAPES), ..., H, W), in the order of ``SHAPES``.
    """
    ax, ay = dx.abs(), dy.abs()
    dist = torch.sqrt(dx**2 + dy**2 + 1e-6)
    circle = dist - r
    square = torch.maximum(ax, ay) - 0.85 * r
    # triangle with vertices (0, -r), (r, 0.8 r), (-r, 0.8 r): the largest signed
    # distance to its three edge lines
    side = math.hypot(1.0, 1.8)
    right = (1.8 * dx - dy - r) / side
    left = (-1.8 * dx - dy - r) / side
    triangle = torch.maximum(torch.maximum(right, left), dy - 0.8 * r)
    star = dist - r * _star_radius(torch.atan2(-dy, dx))
    w = 0.36 * r
    cross = torch.minimum(torch.maximum(ax - r, ay - w), torch.maximum(ax - w, ay - r))
    by_name = {
        "circle": circle,
        "square": square,
        "triangle": triangle,
        "star": star,
        "cross": cross,
    }
    return torch.stack([by_name[s] for s in SHAPES])


def background(n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dark noisy backgrounds like the world's, shape (n, 3, IMAGE_SIZE, IMAGE_SIZE)."""
    base = torch.rand(n, 3, 1, 1, generator=generator) * 70 / 255
    noise = torch.randn(n, 3, IMAGE_SIZE, IMAGE_SIZE, generator=generator) * 10 / 255
    return (base + noise).clamp(0, 1)


def soft_render(
    params: SceneParams, backdrop: torch.Tensor, *, softness: float = 0.5
) -> torch.Tensor:
    """Paint the soft objects over ``backdrop``, first object first.

    Parameters
    ----------
    params : SceneParams of n images with k objects
    backdrop : torch.Tensor of shape (n, 3, H, W), values in [0, 1]
    softness : float
        Width of the edge ramp in pixels (smaller: harder edges).

    Returns
    -------
    torch.Tensor of shape (n, 3, H, W), values in [0, 1], differentiable in
    every parameter.
    """
    if softness <= 0:
        raise ValueError(f"softness must be > 0, got {softness}")
    n, k = params.size.shape
    if backdrop.shape[0] != n:
        raise ValueError(f"backdrop holds {backdrop.shape[0]} images for {n} scenes")
    grid = torch.arange(IMAGE_SIZE, dtype=torch.float32) + 0.5
    image = backdrop
    centers, radii = params.centers(), params.diameters() / 2
    mix = params.shape.softmax(-1)  # (n, k, n_shapes)
    rgb = torch.sigmoid(params.color)  # (n, k, 3)
    for j in range(k):
        dx = grid[None, None, :] - centers[:, j, 0, None, None]  # (n, 1, W)
        dy = grid[None, :, None] - centers[:, j, 1, None, None]  # (n, H, 1)
        dx, dy = torch.broadcast_tensors(dx, dy)  # (n, H, W)
        sd = shape_distances(dx, dy, radii[:, j, None, None])  # (S, n, H, W)
        masks = torch.sigmoid(-sd / softness)
        mask = (mix[:, j].T[:, :, None, None] * masks).sum(0)[:, None]  # (n, 1, H, W)
        image = image * (1 - mask) + rgb[:, j, :, None, None] * mask
    return image


def snap(params: SceneParams) -> list[dict]:
    """The nearest scene the world can draw: per image, each object's most likely
    shape, nearest named colour, nearest size and (one object) nearest position.

    Returns
    -------
    list of n attribute dicts as in ``ToyDataset.attributes`` (objects with
    color, shape, size, position and center; layout for two objects from their
    centres).
    """
    names = list(COLORS)
    palette = torch.tensor([COLORS[c] for c in names], dtype=torch.float32) / 255
    with torch.no_grad():
        rgb = torch.sigmoid(params.color)
        color = torch.cdist(rgb, palette.expand(len(rgb), -1, -1)).argmin(-1)
        shape = params.shape.argmax(-1)
        diameters, centers = params.diameters(), params.centers()
    sizes = list(SIZES)
    scenes = []
    for i in range(len(rgb)):
        objects = []
        for j in range(rgb.shape[1]):
            d = float(diameters[i, j])
            x, y = (float(v) for v in centers[i, j])
            objects.append(
                {
                    "color": names[color[i, j]],
                    "shape": SHAPES[shape[i, j]],
                    "size": min(sizes, key=lambda s: abs(SIZES[s] - d)),
                    "position": None,
                    "center": (x, y),
                }
            )
        layout = None
        if len(objects) == 1:
            objects[0]["position"] = min(
                POSITIONS, key=lambda p: math.dist(POSITION_CENTERS[p], (x, y))
            )
        else:
            (x0, y0), (x1, y1) = (o["center"] for o in objects)
            layout = "horizontal" if abs(x1 - x0) >= abs(y1 - y0) else "vertical"
            if (x1 - x0 if layout == "horizontal" else y1 - y0) < 0:
                objects.reverse()  # the world lists the left / upper object first
        scenes.append({"objects": objects, "layout": layout})
    return scenes
