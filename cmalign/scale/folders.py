"""Caption folders and ImageFolders as shards, and the reader of any shard.

:func:`read_caption_folder` (:func:`cmalign.data.load_caption_folder`) and
:func:`read_image_folder` (:func:`cmalign.evaluate.formats.load_image_folder`)
yield the same :class:`~cmalign.scale.readers.Sample` records as the tar and
Parquet readers, for a slice of the folder's images (one
:class:`~cmalign.scale.shards.Shard`); :func:`read_shard` picks the reader
by the shard's kind. Kept apart from :mod:`cmalign.scale.readers` so that
``python -m cmalign.evaluate``, which reads tar shards through it, does not
import the evaluate package back. Used by :mod:`cmalign.scale.pipeline`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from .readers import Sample, read_parquet, read_tar
from .shards import Shard


def _read_file(path: Path) -> tuple[bytes | None, str | None]:
    try:
        return path.read_bytes(), None
    except OSError as err:
        return None, f"unreadable file ({err.strerror or err})"


def read_caption_folder(root: str | Path, *, start: int = 0, stop: int = -1) -> Iterator[Sample]:
    """Images ``[start, stop)`` of a caption folder, each with all its captions."""
    from ..data import load_caption_folder

    data = load_caption_folder(root)
    captions: dict[int, list[str]] = {}
    for text, image in zip(data.captions, data.text_to_image):
        captions.setdefault(image, []).append(text)
    stop = len(data.images) if stop < 0 else stop
    for i in range(start, stop):
        path = Path(data.images[i])
        image, reason = _read_file(path)
        key = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        yield Sample(key, image, captions.get(i, []), str(path), None, reason)


def read_image_folder(root: str | Path, *, start: int = 0, stop: int = -1) -> Iterator[Sample]:
    """Images ``[start, stop)`` of an ImageFolder, each with its class index (no captions)."""
    from ..evaluate.formats import load_image_folder

    images, labels, _ = load_image_folder(root)
    stop = len(images) if stop < 0 else stop
    for path, label in zip(images[start:stop], labels[start:stop]):
        image, reason = _read_file(path)
        yield Sample(str(path.relative_to(root)), image, [], str(path), label, reason)


def read_shard(shard: Shard, *, caption_lines: bool = False, **parquet_columns) -> Iterator[Sample]:
    """The samples of any :class:`~cmalign.scale.shards.Shard`, by its kind.

    ``parquet_columns``: ``image_column``, ``caption_column``, ``key_column``
    of :func:`read_parquet`.
    """
    if shard.kind == "webdataset":
        return read_tar(shard.path, caption_lines=caption_lines)
    if shard.kind == "parquet":
        return read_parquet(shard.path, **parquet_columns)
    if shard.kind == "captions":
        return read_caption_folder(shard.path, start=shard.start, stop=shard.stop)
    if shard.kind == "imagefolder":
        return read_image_folder(shard.path, start=shard.start, stop=shard.stop)
    raise ValueError(f"shard {shard.path}: unknown kind {shard.kind!r}")
