"""The scale readers and shard patterns, without Ray: tar, Parquet, folders, failures."""

from __future__ import annotations

import sys

import pytest

from cmalign.scale import extra
from cmalign.scale.folders import read_shard
from cmalign.scale.patterns import expand_braces
from cmalign.scale.readers import ShardReadError, decode_image, read_tar
from cmalign.scale.shards import resolve_inputs
from cmalign.scale.toyshards import write_toy_shards
from cmalign.toy.export import write_caption_folder, write_image_folder


def test_brace_patterns_expand_like_webdataset():
    assert expand_braces("s/{000..002}.tar") == ["s/000.tar", "s/001.tar", "s/002.tar"]
    assert expand_braces("{a,b}-{1..2}") == ["a-1", "a-2", "b-1", "b-2"]
    assert expand_braces("x{9..11}") == ["x9", "x10", "x11"]
    assert expand_braces("plain.tar") == ["plain.tar"]


def test_a_pattern_counts_its_shards_and_names_what_is_missing(tmp_path):
    write_toy_shards(tmp_path, n=40, per_shard=16)  # 00000..00002
    inputs = resolve_inputs(str(tmp_path / "{00000..00003}.tar"))
    assert [s.id for s in inputs.shards] == ["00000", "00001", "00002"]
    assert inputs.missing == [str(tmp_path / "00003.tar")]
    assert "matched 3 of 4 shards" in inputs.summary() and "00003.tar" in inputs.summary()
    assert len(resolve_inputs(str(tmp_path)).shards) == 3  # the folder of shards
    assert "matched 3 shards" in resolve_inputs(str(tmp_path / "*.tar")).summary()
    with pytest.raises(FileNotFoundError, match=r"nothing/\{0..9\}.tar.*matched no file"):
        resolve_inputs(str(tmp_path / "nothing/{0..9}.tar"))


def test_tar_samples_group_by_key_and_broken_ones_say_why(tmp_path):
    (shard,) = write_toy_shards(tmp_path, n=6, per_shard=6, corrupt=3)
    samples = list(read_tar(shard))
    assert [s.key for s in samples] == [f"{k:09d}" for k in range(6)]
    assert all(s.captions and s.image and s.reason is None for s in samples[:3])
    truncated, no_caption, no_image = samples[3:]
    with pytest.raises(ValueError, match="not a decodable image"):
        decode_image(truncated.image, where=truncated.key)
    assert no_caption.captions == [] and no_caption.reason is None
    assert no_image.image is None and "no image file" in no_image.reason
    assert decode_image(samples[0].image).mode == "RGB"


def test_a_truncated_tar_raises_after_the_samples_it_read(tmp_path):
    (shard,) = write_toy_shards(tmp_path, n=8, per_shard=8)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    read = []
    with pytest.raises(ShardReadError, match=str(shard)):
        for sample in read_tar(shard):
            read.append(sample)
    assert 0 < len(read) < 8


def test_parquet_rows_with_img2dataset_columns_and_named_flags(tmp_path):
    pytest.importorskip("pyarrow")
    (path,) = write_toy_shards(tmp_path, n=5, per_shard=5, format="parquet", corrupt=1)
    (shard,) = resolve_inputs(str(path)).shards
    samples = list(read_shard(shard))
    assert [s.key for s in samples] == [f"{k:09d}" for k in range(5)]
    with pytest.raises(ValueError, match="not a decodable image"):
        decode_image(samples[-1].image)  # the broken one: a truncated file
    assert all(s.captions for s in samples[:4])
    with pytest.raises(ShardReadError, match="no image column 'image'.*key, jpg, txt"):
        list(read_shard(shard, image_column="image"))
    no_captions = list(read_shard(shard, caption_column="caption"))
    assert all(s.captions == [] for s in no_captions)


def test_caption_folders_and_image_folders_become_shards(tmp_path):
    write_caption_folder(tmp_path / "captions", n=5)
    inputs = resolve_inputs(str(tmp_path / "captions"), folder_shard_size=2)
    assert inputs.kind == "captions" and [(s.start, s.stop) for s in inputs.shards] == [(0, 2), (2, 4), (4, 5)]
    samples = [s for shard in inputs.shards for s in read_shard(shard)]
    assert [s.key for s in samples] == [f"{k}.png" for k in range(5)]
    assert all(len(s.captions) == 1 and s.image for s in samples)
    write_image_folder(tmp_path / "classes", n=20)
    inputs = resolve_inputs(str(tmp_path / "classes"))
    assert inputs.kind == "imagefolder"
    samples = list(read_shard(inputs.shards[0]))
    assert samples and all(s.label is not None and s.captions == [] for s in samples)


def test_without_the_extra_the_message_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now fails
    with pytest.raises(extra.MissingExtraError, match=r"faiss-cpu.*pip install 'cmalign\[scale\]'"):
        extra.require("faiss")
    from cmalign.scale import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["index", "--embeddings", "x", "--out", "y"])
    assert "pip install 'cmalign[scale]'" in str(exit_.value) and "\n" not in str(exit_.value)


def test_the_pipeline_stages_in_this_process_give_embed_images_vectors(tmp_path, toy_bundle):
    """The three Ray stages called directly (no Ray): what the actors compute."""
    import numpy as np
    import torch

    import cmalign
    from cmalign.scale.pipeline import (
        Embedder,
        _probe_shape,
        decode_stage,
        preprocessing_bundle,
        read_stage,
    )

    pa = pytest.importorskip("pyarrow")
    (shard,) = write_toy_shards(tmp_path, n=10, per_shard=10, corrupt=3)
    item = {"path": [str(shard)], "kind": ["webdataset"], "id": ["00000"], "start": [0], "stop": [-1]}
    tables = list(read_stage({k: np.array(v) for k, v in item.items()}, caption_lines=False,
                             columns={}, rows_per_block=4))
    assert [t.num_rows for t in tables] == [4, 4, 3]  # the last block ends with the end row
    rows = {k: np.array(v, dtype=object) for k, v in pa.concat_tables(tables).to_pydict().items()}
    assert rows["kind"][-1] == "end" and rows["index"][-1] == 10
    decoded = decode_stage(rows, preprocess_bundle=preprocessing_bundle(toy_bundle),
                           pixel_shape=_probe_shape(toy_bundle), texts=True)
    assert list(decoded["kind"][7:10]) == ["failure", "failure", "failure"]
    embedder = Embedder("toy", expected_key=cmalign.cache.model_key(toy_bundle), device="cpu", texts=True,
                        autocast=False, threads=torch.get_num_threads(), cache_dir=None, env={})
    out = embedder(decoded)
    good = decoded["kind"] == "sample"
    images = [decode_image(im) for im in rows["image"][good]]
    ref = cmalign.embed_images(toy_bundle, images, progress=False)
    assert torch.allclose(torch.from_numpy(out["image_embedding"][good]), ref, atol=1e-5)
    texts = cmalign.embed_texts(toy_bundle, list(rows["caption"][good]), progress=False)
    assert torch.allclose(torch.from_numpy(out["text_embedding"][good]), texts, atol=1e-5)
    with pytest.raises(RuntimeError, match="other weights"):
        Embedder("toy", expected_key="toy-0000", device="cpu", texts=False, autocast=False,
                 threads=torch.get_num_threads(), cache_dir=None, env={})
