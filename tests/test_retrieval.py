import pytest
import torch

from cmalign.retrieval import EmbeddingIndex, search
from tests.conftest import random_unit


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 1000])
@pytest.mark.parametrize("k", [1, 5, 50])
def test_chunked_search_equals_full_matrix(chunk_size, k, generator):
    queries, gallery = random_unit(9, 16, generator), random_unit(100, 16, generator)
    scores, indices = search(queries, gallery, k=k, chunk_size=chunk_size)
    full_scores, full_indices = (queries @ gallery.T).topk(k, dim=1)
    assert torch.allclose(scores, full_scores, atol=1e-6)
    assert torch.equal(indices, full_indices)


def test_single_query_vector(generator):
    gallery = random_unit(10, 4, generator)
    scores, indices = search(gallery[3], gallery, k=1)
    assert indices.tolist() == [[3]] and scores[0, 0] == pytest.approx(1.0)


def test_search_errors(generator):
    gallery = random_unit(5, 4, generator)
    with pytest.raises(ValueError, match=r"k must be an int in \[1, 5\]"):
        search(gallery, gallery, k=6)
    with pytest.raises(ValueError, match="empty"):
        search(gallery, gallery[:0], k=1)
    with pytest.raises(ValueError, match="dim"):
        search(gallery, random_unit(5, 3, generator), k=1)
    bad = gallery.clone()
    bad[3] = float("nan")
    with pytest.raises(ValueError, match="gallery_emb row 3"):
        search(gallery, bad, k=2, chunk_size=2)
    bad[3] = 0.0
    with pytest.raises(ValueError, match="gallery_emb row 3"):
        search(gallery, bad, k=2)
    with pytest.raises(ValueError, match="query_emb is not L2-normalised"):
        search(gallery * 2, gallery, k=2)


@pytest.mark.parametrize("fmt", ["safetensors", "npy"])
def test_index_round_trip_both_directions(fmt, tmp_path, generator):
    images, texts = random_unit(6, 8, generator), random_unit(4, 8, generator)
    index = EmbeddingIndex("toy")
    index.add_images(images[:3], ["a.jpg", "b.jpg", "c.jpg"])
    index.add_images(images[3:])
    index.add_texts(texts, ["w", "x", "y", "z"])
    index.save(tmp_path / "idx", fmt=fmt)
    loaded = EmbeddingIndex.load(tmp_path / "idx", model_name="toy")
    assert loaded.image_keys == ["a.jpg", "b.jpg", "c.jpg", "3", "4", "5"]
    assert torch.equal(loaded.image_emb, images)
    _, idx = loaded.search_images(texts, k=2)
    assert torch.equal(idx, search(texts, images, k=2)[1])
    _, idx = loaded.search_texts(images, k=1)
    assert torch.equal(idx, search(images, texts, k=1)[1])
    assert not list((tmp_path / "idx").glob("*.pkl"))
    with pytest.raises(ValueError, match="built with 'toy'"):
        EmbeddingIndex.load(tmp_path / "idx", model_name="openai/clip-vit-base-patch32")


def test_index_errors(tmp_path, generator):
    index = EmbeddingIndex("toy")
    with pytest.raises(ValueError, match="no image embeddings"):
        index.search_images(random_unit(1, 4, generator))
    with pytest.raises(ValueError, match="2 image keys for 3"):
        index.add_images(random_unit(3, 4, generator), ["a", "b"])
    with pytest.raises(FileNotFoundError, match="index.json"):
        EmbeddingIndex.load(tmp_path)
