"""Turn whatever a user hands us (paths, PIL images, arrays) into RGB PIL images.

Bad input fails with a message naming the file or index; odd but valid
formats (CMYK, 16-bit, RGBA, palette, greyscale) are converted with one
warning per call. Used by :mod:`cmalign.embed`; taught in
notebooks/01_clip_embeddings.ipynb.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

ImageLike = str | os.PathLike | Image.Image | np.ndarray

#: Refuse images larger than this many pixels (about 8000 x 8000) rather than
#: exhaust memory decoding them.
MAX_PIXELS = 64_000_000


def _describe(item: ImageLike, index: int) -> str:
    if isinstance(item, (str, os.PathLike)):
        return f"image {index} ('{item}')"
    return f"image {index}"


def _from_path(path: Path, index: int, max_pixels: int) -> Image.Image:
    where = f"image {index} ('{path}')"
    if not path.exists():
        raise FileNotFoundError(f"{where}: file not found")
    if path.is_dir():
        raise IsADirectoryError(f"{where}: is a directory, not an image file")
    try:
        image = Image.open(path)
    except Image.DecompressionBombError as err:
        raise ValueError(f"{where}: too large to decode safely ({err})") from err
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(
            f"{where}: not a readable image file (corrupt, truncated or not an image: {err})"
        ) from err
    width, height = image.size
    if width * height > max_pixels:
        raise ValueError(
            f"{where}: {width}x{height} pixels exceeds the limit of {max_pixels:,}; "
            "resize it first"
        )
    try:
        image.load()
    except (OSError, SyntaxError) as err:
        raise ValueError(f"{where}: corrupt or truncated image ({err})") from err
    return image


def _from_array(array: np.ndarray, index: int) -> Image.Image:
    if array.dtype != np.uint8:
        raise TypeError(
            f"image {index}: numpy arrays must be uint8 with values 0-255, got "
            f"{array.dtype} (scale floats with (x * 255).astype(np.uint8))"
        )
    if array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4)):
        return Image.fromarray(array)
    raise ValueError(
        f"image {index}: array shape {array.shape} is not (H, W), (H, W, 3) or (H, W, 4)"
    )


def _to_rgb(image: Image.Image) -> tuple[Image.Image, str | None]:
    """Return an RGB copy and the name of the conversion done (None if none)."""
    mode = image.mode
    if mode == "RGB":
        return image, None
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(array.max()), 1.0)
        grey = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB"), f"{mode} (16/32-bit)"
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB"), f"{mode} (alpha)"
    return image.convert("RGB"), mode


def load_rgb_images(
    images: Sequence[ImageLike], max_pixels: int = MAX_PIXELS, start: int = 0
) -> list[Image.Image]:
    """Load and convert a batch of images to RGB.

    Parameters
    ----------
    images : sequence of str, PathLike, PIL.Image.Image or numpy.ndarray
        Paths, PIL images or uint8 arrays of shape (H, W, 3), (H, W, 4) or (H, W).
    max_pixels : int
        Refuse larger images with a clear error.
    start : int
        Index of ``images[0]`` in the caller's full list (used in messages).

    Returns
    -------
    list of PIL.Image.Image, all in mode ``"RGB"``, one per input, same order.

    Raises
    ------
    FileNotFoundError, IsADirectoryError, ValueError, TypeError
        With the index (and path) of the offending item.
    """
    converted: Counter[str] = Counter()
    out = []
    for index, item in enumerate(images, start=start):
        if isinstance(item, (str, os.PathLike)):
            image = _from_path(Path(item), index, max_pixels)
        elif isinstance(item, Image.Image):
            image = item
            if image.width * image.height > max_pixels:
                raise ValueError(
                    f"image {index}: {image.size} exceeds {max_pixels:,} px"
                )
        elif isinstance(item, np.ndarray):
            image = _from_array(item, index)
        else:
            raise TypeError(
                f"image {index}: expected a path, PIL image or uint8 array, "
                f"got {type(item).__name__}"
            )
        if image.width == 0 or image.height == 0:
            raise ValueError(f"{_describe(item, index)} has zero size {image.size}")
        rgb, conversion = _to_rgb(image)
        if conversion:
            converted[conversion] += 1
        out.append(rgb)
    if converted:
        summary = ", ".join(f"{n} x {mode}" for mode, n in converted.items())
        warnings.warn(f"converted images to RGB: {summary}", stacklevel=3)
    return out
