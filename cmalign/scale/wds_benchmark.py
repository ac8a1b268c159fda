"""CLIP_benchmark's webdataset layout, for ``python -m cmalign.evaluate ... --dataset webdataset``.

The layout (CLIP_benchmark's ``build_wds_dataset`` and ``clip_benchmark_export_wds``)::

    ROOT/test/nshards.txt                      the number of shards, N
    ROOT/test/0.tar ... ROOT/test/{N-1}.tar    samples sNNNNNNN.webp|png|jpg with
                                               .txt (retrieval: one caption per line)
                                               or .cls (classification: class index)
    ROOT/classnames.txt                        one class name per line
    ROOT/zeroshot_classification_templates.txt one template per line, "{c}" for the name
    ROOT/dataset_type.txt                      "retrieval" (else classification)

Shards are found by the same pattern code as ``cmalign.scale embed``
(``test/{0..N-1}.tar``, the matched count printed) and indexed, not loaded:
:class:`TarImages` keeps each image's offset in its shard and decodes it
when ``embed_images`` asks, so an ImageNet-sized set is not held in memory.
A sample without an image, or without captions / a label, is listed in
``skipped`` (shard, key, reason) and left out of the benchmark; an image
that does not decode stops the run with an error naming shard and key.
"""

from __future__ import annotations

import tarfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..data import CaptionSet
from .patterns import describe_match, match_files
from .readers import IMAGE_EXTENSIONS, _split_name, decode_image


class TarImages(Sequence):
    """Images inside tar shards, decoded on access: ``(shard, key, offset, size)`` each."""

    def __init__(self, entries: list[tuple[str, str, int, int]]):
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        shard, key, offset, size = self.entries[i]
        with open(shard, "rb") as handle:
            handle.seek(offset)
            data = handle.read(size)
        return decode_image(data, where=f"{shard}, sample {key}")


@dataclass
class WdsSamples:
    """Indexed samples of one split: images, their texts or labels, and the skipped."""

    images: TarImages
    texts: list[list[str]]
    labels: list[int | None]
    skipped: list[dict] = field(default_factory=list)


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (CLIP_benchmark's webdataset layout)")
    return path.read_text(encoding="utf-8")


def index_split(root: str | Path, split: str = "test", *, log=print) -> WdsSamples:
    """Index ``ROOT/split/{0..N-1}.tar`` without reading the images."""
    root = Path(root)
    nshards = int(_read_text(root / split / "nshards.txt").strip())
    pattern = str(root / split / f"{{0..{nshards - 1}}}.tar")
    paths, expanded, missing = match_files(pattern)
    summary = describe_match(pattern, len(paths), expanded, missing, "webdataset")
    log(summary)
    if missing:
        raise FileNotFoundError(f"{root / split}: {summary}")
    entries, texts, labels, skipped = [], [], [], []
    for path in paths:
        groups: dict[str, dict] = {}
        with tarfile.open(path, "r:") as tar:
            for member in tar:
                key, ext = _split_name(member.name)
                if not member.isfile() or not ext:
                    continue
                files = groups.setdefault(key, {})
                if ext in IMAGE_EXTENSIONS:
                    files.setdefault("image", (member.offset_data, member.size))
                elif ext in ("txt", "cls"):
                    files[ext] = tar.extractfile(member).read().decode("utf-8", errors="replace")
        for key, files in groups.items():
            lines = [t.strip() for t in files.get("txt", "").splitlines() if t.strip()]
            label = files.get("cls", "").strip()
            reason = ("no image file" if "image" not in files
                      else None if lines or label.isdigit() else "no captions (.txt) and no label (.cls)")
            if reason:
                skipped.append({"shard": path, "key": key, "reason": reason})
                continue
            entries.append((path, key, *files["image"]))
            texts.append(lines)
            labels.append(int(label) if label.isdigit() else None)
    return WdsSamples(TarImages(entries), texts, labels, skipped)


def load_wds_retrieval(root: str | Path, *, split: str = "test", log=print) -> CaptionSet:
    """A retrieval split as a :class:`cmalign.data.CaptionSet` whose images are :class:`TarImages`.

    Its ``skipped`` attribute lists the samples left out (shard, key, reason).
    """
    samples = index_split(root, split, log=log)
    keep = [i for i, lines in enumerate(samples.texts) if lines]
    skipped = samples.skipped + [
        {"shard": samples.images.entries[i][0], "key": samples.images.entries[i][1],
         "reason": "no captions (.txt)"} for i in range(len(samples.texts)) if not samples.texts[i]]
    captions, text_to_image = [], []
    for new, i in enumerate(keep):
        captions += samples.texts[i]
        text_to_image += [new] * len(samples.texts[i])
    data = CaptionSet(TarImages([samples.images.entries[i] for i in keep]), captions, text_to_image)
    data.skipped = skipped
    return data


def load_wds_classification(root: str | Path, *, split: str = "test", log=print):
    """A classification split: images, labels, class names, templates (``{c}`` -> ``{}``).

    Returns
    -------
    images : TarImages, labels : list of int, classnames : list of str,
    templates : list of str (empty when the file is absent), skipped : list of dict
    """
    root = Path(root)
    names = [line.strip() for line in _read_text(root / "classnames.txt").splitlines() if line.strip()]
    path = root / "zeroshot_classification_templates.txt"
    templates = []
    if path.is_file():
        templates = [t.strip().replace("{c}", "{}") for t in path.read_text().splitlines() if t.strip()]
    samples = index_split(root, split, log=log)
    keep = [i for i, label in enumerate(samples.labels) if label is not None]
    skipped = samples.skipped + [
        {"shard": samples.images.entries[i][0], "key": samples.images.entries[i][1],
         "reason": "no label (.cls)"} for i, label in enumerate(samples.labels) if label is None]
    bad = [samples.labels[i] for i in keep if not 0 <= samples.labels[i] < len(names)]
    if bad:
        raise ValueError(f"{root}: label {bad[0]} but classnames.txt has {len(names)} classes")
    images = TarImages([samples.images.entries[i] for i in keep])
    return images, [samples.labels[i] for i in keep], names, templates, skipped
