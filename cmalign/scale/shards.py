"""What ``--input`` names: shard patterns expanded, folders recognised, units of work.

``python -m cmalign.scale embed --input PATTERN_OR_DIR`` and
``python -m cmalign.evaluate ... --dataset webdataset`` start here.
:func:`expand_braces` turns ``shards/{00000..00127}.tar`` into 128 names
(zero padding kept, ``{a,b}`` lists, several groups); :func:`resolve_inputs`
finds which of them exist (a pattern that matches nothing is an error that
names it; missing names are counted, never silently skipped), tells tar
shards (webdataset, img2dataset layout), Parquet files, caption folders
(``captions.csv`` / ``captions.jsonl``) and ImageFolders apart, and returns
:class:`Shard` units: one per file, or one per ``folder_shard_size`` images
of a folder. A shard is the unit of resuming: its output is written whole or
not at all.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..data import MANIFESTS
from .patterns import describe_match, match_files

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")
KINDS = ("webdataset", "parquet", "captions", "imagefolder")


@dataclass(frozen=True)
class Shard:
    """One unit of work: a tar or Parquet file, or a slice of a folder's images.

    Attributes
    ----------
    path : str
        The file, or the folder (kinds ``captions`` and ``imagefolder``).
    kind : str
        One of :data:`KINDS`.
    id : str
        Unique, filesystem-safe name of its output (``00003`` for ``00003.tar``).
    start, stop : int
        Image rows ``[start, stop)`` of a folder; ``0, -1`` for a whole file.
    """

    path: str
    kind: str
    id: str
    start: int = 0
    stop: int = -1


@dataclass
class Inputs:
    """The shards ``--input`` resolved to, with what was asked and what was missing."""

    spec: str
    kind: str
    shards: list[Shard]
    expanded: int = 0  # names the pattern expanded to (0 for a folder)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The line the commands print: what was matched, and what is missing."""
        if self.kind in ("captions", "imagefolder"):
            return f"{self.spec}: {self.kind} folder, {len(self.shards)} shard(s) of images"
        n = len({s.path for s in self.shards})
        return describe_match(self.spec, n, self.expanded, self.missing, self.kind)


def _kind_of_file(path: str) -> str | None:
    name = path.lower()
    if name.endswith(TAR_SUFFIXES):
        return "webdataset"
    if name.endswith(".parquet"):
        return "parquet"
    return None


def _shard_ids(paths: list[str]) -> list[str]:
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    ids = []
    for path in paths:
        rel = os.path.relpath(os.path.abspath(path), root)
        for suffix in (*TAR_SUFFIXES, ".parquet"):
            if rel.lower().endswith(suffix):
                rel = rel[: -len(suffix)]
                break
        ids.append(re.sub(r"[^A-Za-z0-9_.-]", "_", rel.replace(os.sep, "__")))
    return ids


def _folder_shards(root: Path, kind: str, n_images: int, size: int) -> list[Shard]:
    return [
        Shard(str(root), kind, f"{kind}-{start:09d}", start, min(start + size, n_images))
        for start in range(0, n_images, size)
    ]


def _resolve_folder(root: Path, folder_shard_size: int) -> Inputs:
    if any((root / name).is_file() for name in MANIFESTS):
        from ..data import load_caption_folder

        n = len(load_caption_folder(root).images)
        return Inputs(str(root), "captions", _folder_shards(root, "captions", n, folder_shard_size))
    files = sorted(str(p) for p in root.iterdir() if p.is_file() and _kind_of_file(str(p)))
    if files:
        return _resolve_files(str(root), files, len(files), [])
    if any(p.is_dir() for p in root.iterdir()):
        from ..evaluate.formats import load_image_folder

        n = len(load_image_folder(root)[0])
        return Inputs(str(root), "imagefolder", _folder_shards(root, "imagefolder", n, folder_shard_size))
    raise ValueError(
        f"input folder {root} holds no tar or Parquet shards, no {' / '.join(MANIFESTS)} "
        "and no class sub-folders"
    )


def _resolve_files(spec: str, files: list[str], expanded: int, missing: list[str]) -> Inputs:
    kinds = {_kind_of_file(f) for f in files}
    if None in kinds:
        odd = next(f for f in files if _kind_of_file(f) is None)
        raise ValueError(f"input {spec!r}: {odd} is neither a .tar nor a .parquet shard")
    if len(kinds) > 1:
        raise ValueError(f"input {spec!r} mixes tar and Parquet shards: give one kind")
    kind = kinds.pop()
    shards = [Shard(f, kind, i) for f, i in zip(files, _shard_ids(files))]
    return Inputs(spec, kind, shards, expanded, missing)


def resolve_inputs(spec: str | os.PathLike, *, folder_shard_size: int = 1000) -> Inputs:
    """Resolve ``--input`` into shards.

    Parameters
    ----------
    spec : str
        A folder (of tar or Parquet shards, a caption folder or an ImageFolder),
        one file, or a pattern with braces and/or glob wildcards
        (``shards/{00000..00127}.tar``, ``data/*.parquet``).
    folder_shard_size : int
        Images per shard of a caption folder or ImageFolder.

    Returns
    -------
    Inputs
        Its :meth:`~Inputs.summary` is the line the commands print.

    Raises
    ------
    FileNotFoundError
        Nothing matches ``spec`` (the message names it and its first expansion).
    ValueError
        Mixed or unknown file kinds; a folder with nothing readable.
    """
    spec = str(spec)
    if folder_shard_size < 1:
        raise ValueError(f"folder_shard_size must be >= 1, got {folder_shard_size}")
    if Path(spec).is_dir():
        return _resolve_folder(Path(spec), folder_shard_size)
    files, expanded, missing = match_files(spec)
    return _resolve_files(spec, files, expanded, missing)
