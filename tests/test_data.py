import json

import pytest
from PIL import Image

from cmalign.data import load_caption_folder, load_lesson_data, photos_dir


def test_shipped_photos(photos):
    assert len(photos.images) >= 12
    assert len(photos.captions) == len(photos.text_to_image)
    counts = [photos.text_to_image.count(i) for i in range(len(photos.images))]
    assert min(counts) >= 2 and max(counts) <= 3
    for path in photos.images:
        with Image.open(path) as im:
            assert max(im.size) <= 512 and im.mode == "RGB"
    licences = (photos_dir() / "LICENSES.md").read_text()
    assert all(p.name in licences for p in photos.images)
    assert photos.first_captions()[0] == photos.captions[0]


def _folder(tmp_path, manifest_name, body):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    (tmp_path / manifest_name).write_text(body)
    return tmp_path


def test_csv_and_jsonl(tmp_path):
    folder = _folder(
        tmp_path, "captions.csv", "image,caption\na.png,one\nb.png,two\na.png,three\n"
    )
    data = load_caption_folder(folder)
    assert [p.name for p in data.images] == ["a.png", "b.png"]
    assert data.text_to_image == [0, 1, 0] and data.captions == ["one", "two", "three"]
    rows = [{"image": "b.png", "caption": "x"}, {"image": "a.png", "caption": "y"}]
    (folder / "more.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    data = load_caption_folder(folder, manifest="more.jsonl")
    assert [p.name for p in data.images] == ["b.png", "a.png"]


def test_bad_rows_are_reported_by_file_and_line(tmp_path):
    body = "image,caption\na.png,fine\nmissing.png,gone\nb.png,\n,no image\n"
    folder = _folder(tmp_path, "captions.csv", body)
    with pytest.raises(ValueError) as err:
        load_caption_folder(folder)
    message = str(err.value)
    assert "3 unreadable row(s)" in message
    assert "captions.csv:3: image file 'missing.png' not found" in message
    assert "captions.csv:4: caption is empty" in message
    assert "captions.csv:5: image name is empty" in message


def test_bad_jsonl_and_missing_things(tmp_path):
    folder = _folder(
        tmp_path, "captions.jsonl", '{"image": "a.png", "caption": 3}\n{oops\n'
    )
    with pytest.raises(
        ValueError, match=r"captions.jsonl:1: caption is empty or not a string"
    ):
        load_caption_folder(folder)
    with pytest.raises(ValueError, match=r"captions.jsonl:2: invalid JSON"):
        load_caption_folder(folder)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_caption_folder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="captions.csv or captions.jsonl"):
        load_caption_folder(empty)
    (empty / "captions.csv").write_text("file,text\n")
    with pytest.raises(ValueError, match="image,caption"):
        load_caption_folder(empty)


def test_lesson_data_and_zero_shot_tasks(photos):
    toy = load_lesson_data("toy", n=30, seed=1)
    images, labels, names, templates = toy.zero_shot_task()
    assert len(images) == len(labels) > 0 and all("{}" in t for t in templates)
    singles = [a for a in toy.attributes if len(a["objects"]) == 1]
    assert [names[label] for label in labels] == [
        a["objects"][0]["color"] for a in singles
    ]
    real = load_lesson_data("photos")
    assert real.captions == photos.captions
    assert real.relevance().sum() == len(real.captions)
    images, labels, names, _ = real.zero_shot_task()
    assert len(names) == len(images) == len(real.images) and "cat" in names
