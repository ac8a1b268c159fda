import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import cmalign
from cmalign import cache, embed
from cmalign.toy import world as toyworld
from cmalign.toy.model import build_toy_clip


@pytest.fixture
def files(tmp_path):
    data = toyworld.make_dataset(5, seed=8)
    paths = []
    for i, image in enumerate(data.images):
        path = tmp_path / f"img{i}.png"
        image.save(path)
        paths.append(path)
    return paths


@pytest.fixture
def counter(monkeypatch):
    calls = {"images": 0}
    real = embed.embed_pixels

    def counting(bundle, pixel_values, *, autocast=False):
        calls["images"] += len(pixel_values)
        return real(bundle, pixel_values, autocast=autocast)

    monkeypatch.setattr(embed, "embed_pixels", counting)
    return calls


def test_hit_returns_the_same_vectors_without_running_the_model(
    toy_bundle, files, tmp_path, counter
):
    plain = cmalign.embed_images(toy_bundle, files, progress=False)
    counter["images"] = 0
    first = cmalign.embed_images(
        toy_bundle, files, cache_dir=tmp_path / "c", progress=False
    )
    assert counter["images"] == 5
    second = cmalign.embed_images(
        toy_bundle, files, cache_dir=tmp_path / "c", progress=False
    )
    assert counter["images"] == 5  # all hits
    assert torch.allclose(first, plain, atol=1e-6) and torch.equal(first, second)


def test_stale_file_and_other_model_are_recomputed(
    toy_bundle, files, tmp_path, counter
):
    cmalign.embed_images(toy_bundle, files, cache_dir=tmp_path / "c", progress=False)
    Image.new("RGB", (40, 40), (255, 0, 0)).save(files[2])  # the file changed
    counter["images"] = 0
    out = cmalign.embed_images(
        toy_bundle, files, cache_dir=tmp_path / "c", progress=False
    )
    assert counter["images"] == 1
    assert torch.allclose(
        out[2],
        cmalign.embed_images(toy_bundle, [files[2]], progress=False)[0],
        atol=1e-6,
    )
    other = cmalign.ClipBundle(*build_toy_clip(seed=1), "toy", torch.device("cpu"))
    other.model.eval()
    assert cache.model_key(other) != cache.model_key(
        toy_bundle
    )  # same name, new weights
    counter["images"] = 0
    cmalign.embed_images(other, files, cache_dir=tmp_path / "c", progress=False)
    assert counter["images"] == 5


def test_corrupt_entries_are_detected_and_rebuilt(toy_bundle, files, tmp_path, counter):
    good = cmalign.embed_images(
        toy_bundle, files, cache_dir=tmp_path / "c", progress=False
    )
    folder = tmp_path / "c" / cache.model_key(toy_bundle)
    (folder / f"{cache.file_hash(files[0])}.npy").write_bytes(b"garbage")
    np.save(folder / f"{cache.file_hash(files[1])}.npy", np.zeros(3, np.float32))
    counter["images"] = 0
    with pytest.warns(UserWarning, match="corrupt cache entry") as record:
        again = cmalign.embed_images(
            toy_bundle, files, cache_dir=tmp_path / "c", progress=False
        )
    assert len(record) == 2 and counter["images"] == 2
    assert torch.allclose(again, good, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rebuilt entries are clean now
        cmalign.embed_images(
            toy_bundle, files, cache_dir=tmp_path / "c", progress=False
        )


def test_cache_needs_paths(toy_bundle, tmp_path, files):
    with pytest.raises(TypeError, match="needs file paths"):
        cmalign.embed_images(toy_bundle, [Image.new("RGB", (4, 4))], cache_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="image 1"):
        cmalign.embed_images(
            toy_bundle, [files[0], tmp_path / "x.png"], cache_dir=tmp_path
        )


def test_an_interrupted_run_resumes_where_it_stopped(
    toy_bundle, files, tmp_path, monkeypatch, counter
):
    real = embed.embed_pixels  # the counting wrapper of the counter fixture
    seen = {"batches": 0}

    def dies_after_two_batches(bundle, pixel_values, *, autocast=False):
        seen["batches"] += 1
        if seen["batches"] > 2:
            raise KeyboardInterrupt
        return real(bundle, pixel_values, autocast=autocast)

    monkeypatch.setattr(embed, "embed_pixels", dies_after_two_batches)
    with pytest.raises(KeyboardInterrupt):
        cmalign.embed_images(
            toy_bundle, files, batch_size=2, cache_dir=tmp_path / "c", progress=False
        )
    monkeypatch.setattr(embed, "embed_pixels", real)
    cached = list((tmp_path / "c").rglob("*.npy"))
    assert len(cached) == 4  # two finished batches of two were kept
    counter["images"] = 0
    resumed = cmalign.embed_images(
        toy_bundle, files, batch_size=2, cache_dir=tmp_path / "c", progress=False
    )
    assert counter["images"] == 1  # only the fifth image was left
    assert torch.allclose(
        resumed, cmalign.embed_images(toy_bundle, files, progress=False), atol=1e-6
    )


def test_worker_processes_give_the_same_embeddings(toy_bundle, files):
    alone = cmalign.embed_images(toy_bundle, files, batch_size=2, progress=False)
    workers = cmalign.embed_images(
        toy_bundle, files, batch_size=2, progress=False, num_workers=2
    )
    assert torch.equal(alone, workers)
    with pytest.raises(ValueError, match="num_workers must be >= 0"):
        cmalign.embed_images(toy_bundle, files, num_workers=-1)
