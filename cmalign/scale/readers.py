"""Readers for what users hold: tar shards, Parquet files, caption folders, ImageFolders.

Each reader yields :class:`Sample` records ``(key, image bytes, captions,
source)`` from one :class:`~cmalign.scale.shards.Shard`, streaming (a shard
is never held in memory whole):

- **webdataset tar shards** in img2dataset's layout: the files of a sample
  share a key (``000123.jpg``, ``000123.txt``, ``000123.json``); the image
  is ``.jpg``/``.jpeg``/``.png``/``.webp``, the caption ``.txt`` (or the
  ``caption`` field of ``.json``), a class ``.cls`` (CLIP_benchmark).
  Read with :mod:`tarfile` (streaming, so a shard on a network file system
  is read once, front to back).
- **Parquet** with an image-bytes column and a caption column (img2dataset's
  names ``jpg``, ``txt``, ``key`` by default; a Hugging Face ``Image``
  struct column works too), read a row group at a time with pyarrow.
- caption folders and ImageFolders: :mod:`cmalign.scale.folders`, which also
  picks the reader of any shard (:func:`~cmalign.scale.folders.read_shard`).

A sample that cannot be used comes with ``reason`` set ("no image file",
"no image bytes"); an image that does not decode fails in
:func:`decode_image`. Callers count and list them, never drop them. A shard
that cannot be read at all raises :class:`ShardReadError` after the samples
read before the problem. Why not Ray's ``read_webdataset``: it fails the
whole read task on a truncated shard and knows nothing of a shard's end,
which resuming needs (:mod:`cmalign.scale.pipeline`).
Used by ``python -m cmalign.scale embed`` and ``python -m cmalign.evaluate
... --dataset webdataset``.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..images import MAX_PIXELS, load_rgb_images

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")
#: img2dataset's column names, the defaults of the Parquet reader.
PARQUET_COLUMNS = {"image": "jpg", "caption": "txt", "key": "key"}


class ShardReadError(OSError):
    """A shard that cannot be opened or read to its end (the message names it)."""


@dataclass
class Sample:
    """One image with its captions.

    Attributes
    ----------
    key : str
        Unique within its shard (the tar key, Parquet ``key``, the file name).
    image : bytes or None
        The encoded image file; None when the sample has none.
    captions : list of str
        Possibly empty.
    source : str
        The shard file, or the image file of a folder.
    label : int or None
        Class index (``.cls`` of a tar sample, an ImageFolder's folder).
    reason : str or None
        Why the sample cannot be used, when the reader already knows.
    """

    key: str
    image: bytes | None
    captions: list[str] = field(default_factory=list)
    source: str = ""
    label: int | None = None
    reason: str | None = None


def decode_image(data: bytes, *, where: str = "image") -> Image.Image:
    """Decode image bytes to RGB exactly as ``embed_images`` opens a file.

    Raises
    ------
    ValueError
        Not an image, truncated, or larger than ``cmalign.images.MAX_PIXELS``
        (the message starts with ``where``).
    """
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ValueError(f"{image.width}x{image.height} pixels exceeds {MAX_PIXELS:,}")
        image.load()
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(f"{where}: not a decodable image ({err})") from None
    except ValueError as err:
        raise ValueError(f"{where}: {err}") from None
    return load_rgb_images([image])[0]


def _captions(text: str, lines: bool) -> list[str]:
    if lines:  # CLIP_benchmark's retrieval shards: one caption per line
        return [line.strip() for line in text.splitlines() if line.strip()]
    return [text.strip()] if text.strip() else []


def _tar_sample(key: str, files: dict[str, bytes], source: str, lines: bool) -> Sample:
    image = next((files[ext] for ext in IMAGE_EXTENSIONS if ext in files), None)
    captions: list[str] = []
    if "txt" in files:
        captions = _captions(files["txt"].decode("utf-8", errors="replace"), lines)
    elif "json" in files:
        try:
            meta = json.loads(files["json"])
        except ValueError:
            meta = {}
        if isinstance(meta, dict) and isinstance(meta.get("caption"), str):
            captions = _captions(meta["caption"], lines)
    label = None
    if "cls" in files:
        try:
            label = int(files["cls"].decode().strip())
        except ValueError:
            return Sample(key, image, captions, source, None, "unreadable .cls label")
    reason = None
    if image is None:
        has = ", ".join(f".{ext}" for ext in sorted(files)) or "nothing"
        reason = f"no image file (.{'/.'.join(IMAGE_EXTENSIONS)}); the sample has {has}"
    return Sample(key, image, captions, source, label, reason)


def _split_name(name: str) -> tuple[str, str]:
    folder, _, base = name.rpartition("/")
    stem, dot, ext = base.partition(".")
    return (f"{folder}/{stem}" if folder else stem), (ext.lower() if dot else "")


def read_tar(path: str | Path, *, caption_lines: bool = False) -> Iterator[Sample]:
    """The samples of one tar shard, in file order (webdataset grouping by key).

    ``caption_lines`` splits ``.txt`` into one caption per line
    (CLIP_benchmark's retrieval shards); otherwise the whole text is one caption
    (img2dataset).
    """
    source = str(path)
    key, files, read = None, {}, 0
    try:
        with tarfile.open(source, mode="r|*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                name_key, ext = _split_name(member.name)
                if name_key.rpartition("/")[2].startswith(".") or not ext:
                    continue  # hidden files, files without an extension
                if key is not None and (name_key != key or ext in files):
                    yield _tar_sample(key, files, source, caption_lines)
                    read += 1
                    files = {}
                key = name_key
                files[ext] = tar.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ShardReadError(
            f"tar shard {source}: unreadable after {read} samples ({err})"
        ) from None
    if key is not None:
        yield _tar_sample(key, files, source, caption_lines)


def _image_bytes(value) -> bytes | None:
    if isinstance(value, dict):  # a Hugging Face datasets Image: {"bytes", "path"}
        value = value.get("bytes")
    return bytes(value) if value is not None else None


def read_parquet(
    path: str | Path,
    *,
    image_column: str = PARQUET_COLUMNS["image"],
    caption_column: str = PARQUET_COLUMNS["caption"],
    key_column: str = PARQUET_COLUMNS["key"],
    batch_rows: int = 256,
) -> Iterator[Sample]:
    """The rows of one Parquet file, a record batch at a time.

    A missing caption or key column is allowed (no captions; keys are row
    numbers); a missing image column is a :class:`ShardReadError` naming the
    columns the file has. A null image (img2dataset keeps failed downloads)
    is a sample with ``reason`` (and the file's ``error_message`` when it has one).
    """
    from .extra import require

    pq = require("pyarrow.parquet")
    source = str(path)
    try:
        handle = pq.ParquetFile(source)
    except (OSError, ValueError) as err:
        raise ShardReadError(f"Parquet shard {source}: unreadable ({err})") from None
    names = handle.schema_arrow.names
    if image_column not in names:
        raise ShardReadError(
            f"Parquet shard {source} has no image column {image_column!r} "
            f"(columns: {', '.join(names)}); name it with --image-column"
        )
    wanted = [c for c in (image_column, caption_column, key_column, "error_message") if c in names]
    row = 0
    try:
        for batch in handle.iter_batches(batch_size=batch_rows, columns=wanted):
            columns = batch.to_pydict()
            for i in range(batch.num_rows):
                image = _image_bytes(columns[image_column][i])
                text = columns.get(caption_column, [None] * batch.num_rows)[i]
                key = columns.get(key_column, [None] * batch.num_rows)[i]
                reason = None
                if image is None:
                    error = columns.get("error_message", [None] * batch.num_rows)[i]
                    reason = "no image bytes" + (f" ({error})" if error else "")
                captions = _captions(str(text), False) if text is not None else []
                yield Sample(str(key) if key is not None else f"{row:09d}", image, captions, source, None, reason)
                row += 1
    except (OSError, ValueError) as err:
        raise ShardReadError(f"Parquet shard {source}: unreadable after {row} rows ({err})") from None
