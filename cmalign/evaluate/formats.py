"""Standard benchmarks as people hold them on disk: Karpathy splits, COCO, ImageFolder.

- :func:`load_karpathy` reads ``dataset_flickr30k.json`` / ``dataset_coco.json``
  (Karpathy & Fei-Fei's split files: ``images`` with ``filename``, optional
  ``filepath``, ``split`` and ``sentences[].raw``) for one split, e.g. the
  Flickr30k 1k or COCO 5k test sets.
- :func:`load_coco_captions` reads COCO's own caption annotations
  (``captions_val2017.json``: ``images`` and ``annotations``).

- :func:`load_image_folder` reads an ImageFolder (class = sub-folder) for
  zero-shot classification, :func:`load_templates` the prompt sets.

The caption loaders return a :class:`cmalign.data.CaptionSet` (images in file order, every
caption with the index of its image), which ``retrieval_metrics`` and
:func:`cmalign.clip_benchmark.clip_benchmark_recall` score. Every problem is named
with the file and the entry: a missing image, an empty caption list, an
unknown split, JSON of another format. Taught in
notebooks/05_retrieval_evaluation.ipynb.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..data import REPO_ROOT, CaptionSet

#: The shipped prompt sets.
PROMPTS_DIR = REPO_ROOT / "data" / "prompts"

#: Where each dataset's images usually live below the root, when the entry
#: has no ``filepath``.
IMAGE_FOLDERS = ("", "flickr30k-images", "images", "val2014", "train2014", "val2017")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"annotation file {path} does not exist") from None
    except ValueError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from None


def _find_image(root: Path, entry: dict, where: str) -> Path:
    name = entry.get("filename") or entry.get("file_name")
    if not name:
        raise ValueError(f"{where} has no filename")
    if entry.get("filepath"):
        candidates = [root / entry["filepath"] / name]
    else:
        candidates = [root / folder / name for folder in IMAGE_FOLDERS]
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{where}: image '{name}' not found (looked for {candidates[0]}"
        + (" and in the usual image folders)" if len(candidates) > 1 else ")")
    )


def load_karpathy(
    annotations: str | Path, root: str | Path | None = None, split: str = "test"
) -> CaptionSet:
    """One split of a Karpathy split file.

    Parameters
    ----------
    annotations : path to ``dataset_flickr30k.json`` or ``dataset_coco.json``
    root : folder of the images (default: the annotation file's folder); an
        image is ``root/<filepath>/<filename>`` when the entry has a
        ``filepath``, else found under ``root`` or its usual image folder.
    split : "test", "val", "train" or "restval"

    Returns
    -------
    CaptionSet
        Images in file order; captions (``sentences[].raw``) grouped by image.
    """
    path = Path(annotations)
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(
            f"{path} is not a Karpathy split file (expected a top-level 'images' list"
            + (
                "; this looks like COCO annotations: use load_coco_captions)"
                if isinstance(data, dict) and "annotations" in data
                else ")"
            )
        )
    root = Path(root) if root is not None else path.parent
    splits = {entry.get("split") for entry in data["images"]}
    if split not in splits:
        raise ValueError(
            f"split {split!r} is not in {path} (it has {sorted(map(str, splits))})"
        )
    images, captions, text_to_image = [], [], []
    for k, entry in enumerate(data["images"]):
        if entry.get("split") != split:
            continue
        where = f"{path}, images[{k}]"
        sentences = [s.get("raw", "").strip() for s in entry.get("sentences", [])]
        if not any(sentences):
            raise ValueError(f"{where} ('{entry.get('filename')}') has no captions")
        images.append(_find_image(root, entry, where))
        for sentence in sentences:
            if sentence:
                captions.append(sentence)
                text_to_image.append(len(images) - 1)
    return CaptionSet(images, captions, text_to_image)


def load_coco_captions(
    annotations: str | Path, root: str | Path | None = None
) -> CaptionSet:
    """COCO caption annotations (``captions_val2017.json``), every image listed.

    Returns
    -------
    CaptionSet
        Images in the order of the file's ``images``; each annotation's
        ``caption`` attached to its ``image_id``.
    """
    path = Path(annotations)
    data = _read_json(path)
    if not isinstance(data, dict) or not {"images", "annotations"} <= set(data):
        raise ValueError(
            f"{path} is not a COCO caption file (expected 'images' and 'annotations')"
        )
    root = Path(root) if root is not None else path.parent
    order = {entry["id"]: k for k, entry in enumerate(data["images"])}
    grouped: dict[int, list[str]] = {k: [] for k in range(len(order))}
    for a, ann in enumerate(data["annotations"]):
        if ann.get("image_id") not in order:
            raise ValueError(
                f"{path}, annotations[{a}]: unknown image_id {ann.get('image_id')}"
            )
        if str(ann.get("caption", "")).strip():
            grouped[order[ann["image_id"]]].append(ann["caption"].strip())
    images, captions, text_to_image = [], [], []
    for k, entry in enumerate(data["images"]):
        if not grouped[k]:
            raise ValueError(
                f"{path}, images[{k}] ('{entry.get('file_name')}') has no captions"
            )
        images.append(_find_image(root, entry, f"{path}, images[{k}]"))
        captions += grouped[k]
        text_to_image += [len(images) - 1] * len(grouped[k])
    return CaptionSet(images, captions, text_to_image)


#: Image file endings read as images in an ImageFolder (lower case).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
#: The shipped prompt sets (``data/prompts``): CLIP's 80 ImageNet templates and
#: the 7-template subset of its prompt-engineering notebook (open_clip's
#: "simple" set).
TEMPLATE_SETS = {"openai": "openai_imagenet_80.txt", "simple": "openai_imagenet_7.txt"}


def load_image_folder(
    root: str | Path, classnames: str | Path | None = None
) -> tuple[list[Path], list[int], list[str]]:
    """An ImageFolder: one sub-folder per class, as torchvision reads it.

    Parameters
    ----------
    root : folder whose sub-folders (sorted by name) are the classes
    classnames : optional text file, one readable class name per line, in the
        order of the sorted sub-folders (default: the folder names, with "_"
        read as a space)

    Returns
    -------
    images : list of Path, labels : list of int, class names : list of str
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {root} does not exist")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise ValueError(
            f"{root} has no class sub-folders (expected root/<class>/<image>)"
        )
    images, labels = [], []
    for label, folder in enumerate(folders):
        files = sorted(
            p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not files:
            raise ValueError(
                f"class folder {folder} has no images ({', '.join(IMAGE_SUFFIXES)})"
            )
        images += files
        labels += [label] * len(files)
    names = [f.name.replace("_", " ") for f in folders]
    if classnames is not None:
        path = Path(classnames)
        if not path.is_file():
            raise FileNotFoundError(f"class-name file {path} does not exist")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
        lines = [line for line in lines if line]
        if len(lines) != len(folders):
            raise ValueError(
                f"{path} has {len(lines)} class names for {len(folders)} class folders in {root}"
            )
        names = lines
    return images, labels, names


def load_templates(spec: str | Path) -> list[str]:
    """Prompt templates: "openai" (80), "simple" (7) or a file, one per line with ``{}``."""
    if str(spec) in TEMPLATE_SETS:
        path = PROMPTS_DIR / TEMPLATE_SETS[str(spec)]
    else:
        path = Path(spec)
        if not path.is_file():
            raise FileNotFoundError(
                f"templates {spec!r}: not {' or '.join(TEMPLATE_SETS)} and no such file"
            )
    templates = [
        t.strip() for t in path.read_text(encoding="utf-8").splitlines() if t.strip()
    ]
    bad = [t for t in templates if t.count("{}") != 1]
    if bad or not templates:
        raise ValueError(
            f"{path}: every template needs exactly one '{{}}' for the class name"
            + (
                f" (e.g. line {templates.index(bad[0]) + 1}: {bad[0]!r})"
                if bad
                else "; none found"
            )
        )
    return templates
