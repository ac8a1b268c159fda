"""Image-caption folders: the shipped photo set and anyone's own data.

A caption folder holds images plus a manifest, ``captions.csv`` (columns
``image,caption``) or ``captions.jsonl`` (``{"image": ..., "caption": ...}``
per line), one row per caption; an image may have several captions.
Taught in notebooks/01_clip_embeddings.ipynb and 05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .metrics import relevance_from_index
from .toy.world import make_dataset
from .utils import REPO_ROOT

MANIFESTS = ("captions.csv", "captions.jsonl")


def photos_dir() -> Path:
    """Folder of the real photos shipped with the repo (``data/photos``)."""
    return REPO_ROOT / "data" / "photos"


@dataclass
class CaptionSet:
    """Images and their captions (a :class:`~cmalign.pairs.PairDataset`; ``len()`` counts captions).

    Attributes
    ----------
    images : list of Path
        One per distinct image, in order of first appearance in the manifest.
    captions : list of str
        One per manifest row.
    text_to_image : list of int
        ``text_to_image[t]`` is the index in ``images`` of caption t's image.
    """

    images: list[Path]
    captions: list[str]
    text_to_image: list[int]

    def __len__(self) -> int:
        return len(self.captions)

    def relevance(self) -> torch.Tensor:
        """Bool (n_texts, n_images): each caption is relevant to its own image only."""
        return relevance_from_index(self.text_to_image, len(self.images))

    def relevance_between(
        self, text_idx: Sequence[int], image_idx: Sequence[int]
    ) -> torch.Tensor:
        """Relevance of a subset: bool (len(text_idx), len(image_idx))."""
        owners = torch.as_tensor(self.text_to_image)[
            torch.as_tensor(list(text_idx), dtype=torch.long)
        ]
        return (
            owners[:, None]
            == torch.as_tensor(list(image_idx), dtype=torch.long)[None, :]
        )

    def first_captions(self) -> list[str]:
        """The first caption of each image, aligned with ``images``."""
        first: dict[int, str] = {}
        for caption, image in zip(self.captions, self.text_to_image):
            first.setdefault(image, caption)
        return [first[i] for i in range(len(self.images))]

    def zero_shot_task(
        self,
    ) -> tuple[list[Path], list[int], list[str], tuple[str, ...]]:
        """One class per image, named by ``PHOTO_CLASSES`` or else by the file stem.

        Returns
        -------
        images, labels (class index per image), class names, prompt templates
        """
        names = [
            PHOTO_CLASSES.get(p.stem, p.stem.replace("_", " ")) for p in self.images
        ]
        return list(self.images), list(range(len(names))), names, PHOTO_TEMPLATES


def split_by_image(
    captions: CaptionSet, *, test_fraction: float = 0.2, seed: int = 0
) -> tuple[CaptionSet, CaptionSet]:
    """Split a caption set into train and test *by image*, so that no image (and
    none of its captions) is in both. notebooks/07_adapting_clip.ipynb.

    Returns
    -------
    train, test : CaptionSet
        Images in their original order; test holds
        ``round(test_fraction * n_images)`` images (at least 1, at most n - 1).
    """
    n = len(captions.images)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if n < 2:
        raise ValueError(f"need at least 2 images to split, got {n}")
    n_test = min(n - 1, max(1, round(test_fraction * n)))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    test_images = set(order[:n_test].tolist())

    def subset(keep_test: bool) -> CaptionSet:
        kept = [i for i in range(n) if (i in test_images) == keep_test]
        new_index = {old: new for new, old in enumerate(kept)}
        rows = [t for t, i in enumerate(captions.text_to_image) if i in new_index]
        return CaptionSet(
            [captions.images[i] for i in kept],
            [captions.captions[t] for t in rows],
            [new_index[captions.text_to_image[t]] for t in rows],
        )

    return subset(False), subset(True)


def _rows(manifest: Path):
    """Yield (line number, row dict or None, problem) from a CSV or JSONL manifest."""
    if manifest.suffix == ".jsonl":
        for line_no, line in enumerate(
            manifest.read_text(encoding="utf-8").splitlines(), 1
        ):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                yield line_no, None, f"invalid JSON ({err.msg})"
                continue
            yield line_no, row if isinstance(row, dict) else None, "not a JSON object"
    else:
        with manifest.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"image", "caption"} - set(reader.fieldnames or [])
            if missing:
                raise ValueError(
                    f"{manifest}: header must name columns image,caption "
                    f"(missing {sorted(missing)})"
                )
            for row in reader:
                yield reader.line_num, row, "malformed row"


def load_caption_folder(path: str | Path, *, manifest: str | None = None) -> CaptionSet:
    """Read a folder of images with a captions manifest.

    Parameters
    ----------
    path : str or Path
        The folder. Image paths in the manifest are relative to it.
    manifest : str, optional
        File name of the manifest; default the first of ``captions.csv``,
        ``captions.jsonl`` that exists.

    Returns
    -------
    CaptionSet

    Raises
    ------
    FileNotFoundError
        Missing folder or manifest.
    ValueError
        Listing every bad row as ``file:line: problem`` (missing image file,
        empty or non-string caption, malformed row).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(f"caption folder '{folder}' not found")
    names = [manifest] if manifest else [m for m in MANIFESTS if (folder / m).exists()]
    if not names or not (folder / names[0]).exists():
        raise FileNotFoundError(
            f"no {manifest or ' or '.join(MANIFESTS)} in '{folder}'"
        )
    manifest_path = folder / names[0]
    images: list[Path] = []
    index: dict[Path, int] = {}
    captions: list[str] = []
    text_to_image: list[int] = []
    problems: list[str] = []
    for line_no, row, problem in _rows(manifest_path):
        where = f"{manifest_path.name}:{line_no}"
        if row is None:
            problems.append(f"{where}: {problem}")
            continue
        image, caption = row.get("image"), row.get("caption")
        if not isinstance(caption, str) or not caption.strip():
            problems.append(f"{where}: caption is empty or not a string ({caption!r})")
            continue
        if not isinstance(image, str) or not image.strip():
            problems.append(f"{where}: image name is empty or not a string")
            continue
        file = (folder / image.strip()).resolve()
        if not file.is_file():
            problems.append(f"{where}: image file '{image}' not found")
            continue
        if file not in index:
            index[file] = len(images)
            images.append(file)
        captions.append(caption.strip())
        text_to_image.append(index[file])
    if problems:
        raise ValueError(
            f"{len(problems)} unreadable row(s) in {manifest_path}:\n"
            + "\n".join(problems)
        )
    if not captions:
        raise ValueError(f"{manifest_path} has no captions")
    return CaptionSet(images, captions, text_to_image)


#: Class names for zero-shot classification of the shipped photos (one per image).
PHOTO_CLASSES = {
    "astronaut": "astronaut",
    "brick": "brick wall",
    "camera": "photographer",
    "chelsea": "cat",
    "coffee": "cup of coffee",
    "coins": "coins",
    "horse": "horse",
    "rocket": "rocket",
    "clock": "clock",
    "hubble_deep_field": "galaxy",
    "retina": "eye",
    "china": "temple",
    "flower": "flower",
}
PHOTO_TEMPLATES = ("a photo of a {}.", "a picture of a {}.", "an image of a {}.")


def load_lesson_data(name: str = "toy", *, n: int = 64, seed: int = 0):
    """The data a lesson runs on, chosen by one config line (``CMALIGN_DATA``).

    Parameters
    ----------
    name : str
        ``"toy"`` (n pairs of the procedural world's ``"test"`` split),
        ``"photos"`` (the shipped real photos) or a caption folder path.
    n, seed : int
        Size and seed of the toy data (ignored for folders).

    Returns
    -------
    ToyDataset or CaptionSet
        Both have ``images``, ``captions``, ``text_to_image``, ``relevance()``,
        ``first_captions()`` and ``zero_shot_task()`` (toy world: the colour of
        the single-object images; photos and folders: one class per image).
    """
    if name == "toy":
        return make_dataset(n, seed=seed, split="test")
    return load_caption_folder(photos_dir() if name == "photos" else name)
