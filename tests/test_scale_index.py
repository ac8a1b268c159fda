"""FAISS indexes of cmalign.scale: the stated rule, recall that recomputes, flat equals exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cmalign
from cmalign.retrieval import search
from cmalign.scale.index import choose_index, parse_memory, recall_at, top_ids

faiss = pytest.importorskip("faiss")
pytest.importorskip("pyarrow")

from cmalign.scale import build_index, open_index  # noqa: E402


def clustered(n: int, dim: int, seed: int = 0) -> torch.Tensor:
    """Unit vectors around 40 centres (neighbours mean something, unlike i.i.d. noise)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.nn.functional.normalize(torch.randn(40, dim, generator=g), dim=1)
    rows = centres[torch.randint(0, 40, (n,), generator=g)]
    return torch.nn.functional.normalize(rows + 0.25 * torch.randn(n, dim, generator=g), dim=1)


def test_the_rule_is_exact_when_small_and_fits_the_budget_when_large():
    assert choose_index(50_000, 512, parse_memory("4GB"))["kind"] == "flat"
    big = choose_index(1_000_000, 512, parse_memory("4GB"))
    assert big["kind"] == "ivfpq" and big["factory"] == "IVF4096,PQ128"
    tight = choose_index(100_000_000, 512, parse_memory("4GB"))
    assert tight["m"] == 16 and 100_000_000 * (16 + 8) <= 4e9  # PQ shrinks to fit
    assert choose_index(50_000, 512, parse_memory("50MB"))["kind"] == "ivfpq"  # flat too big
    with pytest.raises(ValueError, match="no PQ code"):
        choose_index(100_000_000, 512, parse_memory("1GB"))
    assert parse_memory("2GiB") == 2 * 2**30 and parse_memory("512MB") == 512_000_000
    with pytest.raises(ValueError, match="--memory"):
        parse_memory("lots")


def test_recall_is_what_its_definition_says():
    approx, exact = np.array([[1, 2, 3], [4, 5, 6]]), np.array([[1, 3, 9], [7, 8, 4]])
    assert recall_at(approx, exact, 1) == 0.5 and recall_at(approx, exact, 3) == 0.5
    assert top_ids(np.array([[7, 1, 2], [3, 4, 5]]), np.array([7, 9]), 2).tolist() == [[1, 2], [3, 4]]


@pytest.mark.parametrize("kind", ["ivfpq", "hnsw"])
def test_reported_recall_equals_a_recomputation_against_exact_search(tmp_path, kind):
    vectors = clustered(6000, 32)
    report = build_index(vectors, tmp_path / "index", kind=kind, log=lambda _: None)
    assert report["kind"] == kind and report["build_seconds"] > 0 and report["bytes_per_vector"] > 0
    index = open_index(tmp_path / "index")
    rows = np.load(tmp_path / "index" / "tuning_rows.npy")
    queries = vectors[torch.from_numpy(rows)]
    found = top_ids(index.search(vectors=queries, k=11).indices.numpy(), rows, 10)
    _, exact = search(queries, vectors, k=11)
    exact = top_ids(exact.numpy(), rows, 10)
    assert recall_at(found, exact, 10) == pytest.approx(report["recall@10"], abs=1e-12)
    assert recall_at(found, exact, 1) == pytest.approx(report["recall@1"], abs=1e-12)
    if kind == "ivfpq":
        assert report["bytes_per_vector"] < report["flat_bytes_per_vector"] / 2


def test_a_flat_index_searches_like_cmalign_retrieval_search(tmp_path):
    vectors = clustered(3000, 32, seed=1)
    keys = [f"img-{i}" for i in range(3000)]
    report = build_index(vectors, tmp_path / "flat", keys=keys, captions=[f"c{i}" for i in range(3000)],
                         log=lambda _: None)
    assert report["kind"] == "flat" and report["recall@10"] == 1.0
    queries = clustered(7, 32, seed=2)
    hits = open_index(tmp_path / "flat").search(vectors=queries, k=5)
    scores, indices = search(queries, vectors, k=5)
    assert torch.equal(hits.indices, indices)
    assert torch.allclose(hits.scores, scores, atol=1e-5)
    assert hits.keys[0] == [keys[i] for i in indices[0]] and hits.captions[0][0] == f"c{indices[0, 0]}"
    assert hits.sources is None


def test_text_queries_go_through_the_recorded_model(tmp_path, toy_bundle):
    from cmalign.toy.world import make_dataset

    data = make_dataset(300, seed=3, split="test")
    image_emb = cmalign.embed_images(toy_bundle, data.images, progress=False)
    model = {"model": "toy", "model_key": cmalign.cache.model_key(toy_bundle)}
    build_index(image_emb, tmp_path / "toy", model=model, log=lambda _: None)
    index = open_index(tmp_path / "toy")
    hits = index.search(texts=["a red circle", "a blue square"], k=3)
    query = cmalign.embed_texts(toy_bundle, ["a red circle", "a blue square"], progress=False)
    assert torch.equal(hits.indices, search(query, image_emb, k=3)[1])
    with pytest.raises(ValueError, match="exactly one of"):
        index.search(texts=["x"], vectors=query, k=3)


def test_the_map_samples_points_and_takes_neighbours_from_the_whole_index(tmp_path):
    from cmalign.scale.explore import index_map

    vectors = clustered(2500, 16, seed=4)
    build_index(vectors, tmp_path / "flat", log=lambda _: None)
    index = open_index(tmp_path / "flat")
    page = index_map(index, sample=200, k=4, seed=1)
    assert "200 of 2,500 points (uniform random sample, seed 1)" in page.html
    rows = np.array(page.source.data["row"])
    assert len(set(rows.tolist())) == 200
    _, exact = search(vectors[torch.from_numpy(rows)], vectors, k=5)
    expected = top_ids(exact.numpy(), rows, 4)
    assert torch.equal(page.neighbours["rows"], torch.from_numpy(expected))
    assert not set(page.neighbours["rows"].flatten().tolist()) <= set(rows.tolist())  # not only the sample
    page.save(tmp_path / "map.html")
    assert "nearest in the whole index" in (tmp_path / "map.html").read_text()


def test_the_index_command_reads_an_embed_folder_and_keeps_its_keys(tmp_path, capsys):
    import json

    from cmalign.scale import cli
    from cmalign.scale.outputs import write_part
    from cmalign.scale.shards import Shard

    vectors = clustered(1200, 16, seed=5).numpy()
    (tmp_path / "emb").mkdir()
    for s, start in enumerate(range(0, 1200, 400)):  # three parts, as embed writes them
        rows = range(start, start + 400)
        write_part(tmp_path / "emb", Shard(f"{s}.tar", "webdataset", f"{s:05d}"),
                   {"key": [f"k{i}" for i in rows], "caption": [f"c{i}" for i in rows],
                    "source": [f"{s}.tar"] * 400}, vectors[start : start + 400], None, "float32")
    (tmp_path / "emb" / "manifest.json").write_text(json.dumps({"model": "toy", "model_key": "toy-x"}))
    report = cli.main(["index", "--embeddings", str(tmp_path / "emb"), "--out", str(tmp_path / "ix")])
    assert "index rule: flat" in capsys.readouterr().out
    assert report["model"] == {"model": "toy", "model_key": "toy-x", "dtype": None, "column": "image_embedding"}
    hits = open_index(tmp_path / "ix").search(vectors=vectors[[5, 805]], k=1)
    assert hits.keys == [["k5"], ["k805"]] and hits.sources == [["0.tar"], ["2.tar"]]
