"""``cmalign.scale embed`` on a local Ray: same vectors as embed_images, failures listed, resumable.

One Ray session (2 CPUs, a 200 MiB object store, no dashboard) serves the
module and is shut down at the end; every test runs under a deadline.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import cmalign
from cmalign.scale.folders import read_shard
from cmalign.scale.readers import decode_image
from cmalign.scale.shards import resolve_inputs
from cmalign.scale.toyshards import write_toy_shards

pytest.importorskip("ray")
pytest.importorskip("pyarrow")

from cmalign.scale.embed_job import embed_shards  # noqa: E402
from cmalign.scale.outputs import read_embeddings  # noqa: E402
from cmalign.scale.session import ray_session  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def deadline(seconds: int):
    """Fail the test (instead of hanging the suite) after ``seconds``."""

    def expire(*_):
        raise TimeoutError(f"no result within {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def ray_local():
    home = set(os.listdir(Path.home()))
    session = ray_session(num_cpus=2, object_store_memory=200 * 2**20, log=lambda _: None)
    with deadline(180):
        ray = session.__enter__()
    try:
        yield ray
    finally:
        session.__exit__(None, None, None)
    assert not ray.is_initialized()
    assert ".ray" not in set(os.listdir(Path.home())) - home, "Ray wrote into ~"


def reference(bundle, spec: str):
    """embed_images / embed_texts on the decodable, captioned samples of ``spec``."""
    samples = [s for shard in resolve_inputs(spec).shards for s in read_shard(shard)]
    good = []
    for s in samples:
        try:
            good.append((s, decode_image(s.image)))
        except (ValueError, TypeError):
            continue
    good = [(s, im) for s, im in good if s.captions]
    image_emb = cmalign.embed_images(bundle, [im for _, im in good], progress=False)
    text_emb = cmalign.embed_texts(bundle, [s.captions[0] for s, _ in good], progress=False)
    return [s.key for s, _ in good], image_emb, text_emb


def test_tar_shards_give_embed_images_vectors_and_list_the_broken(ray_local, tmp_path, toy_bundle):
    write_toy_shards(tmp_path / "in", n=40, per_shard=16, corrupt=3)
    spec = str(tmp_path / "in" / "{00000..00002}.tar")
    lines = []
    with deadline(300):
        manifest = embed_shards("toy", spec, tmp_path / "out", texts=True, batch_size=8, log=lines.append)
    assert "matched 3 shards (webdataset)" in lines[0]
    assert manifest["counts"] == {"shards": 3, "shards_complete": 3, "samples": 40, "embedded": 37, "failed": 3}
    reasons = {f["key"]: f["reason"] for f in manifest["failures"]}
    assert set(reasons) == {"000000037", "000000038", "000000039"}
    assert "not a decodable image" in reasons["000000037"] and "no caption" in reasons["000000038"]
    assert all(f["shard"].endswith("00002.tar") for f in manifest["failures"])
    assert manifest["model_key"] == cmalign.cache.model_key(toy_bundle) and manifest["dim"] == 128
    keys, image_emb, text_emb = reference(toy_bundle, spec)
    vectors, meta = read_embeddings(tmp_path / "out")
    texts, _ = read_embeddings(tmp_path / "out", column="text_embedding")
    assert meta["key"] == keys and meta["source"][0].endswith("00000.tar")
    assert torch.allclose(torch.from_numpy(vectors), image_emb, atol=1e-5)
    assert torch.allclose(torch.from_numpy(texts), text_emb, atol=1e-5)
    lines.clear()
    with deadline(120):
        again = embed_shards("toy", spec, tmp_path / "out", texts=True, log=lines.append)
    assert "skipped 3 of 3 shards: already complete" in lines
    assert again["counts"] == manifest["counts"]


def test_each_shard_is_read_in_its_own_task(ray_local, tmp_path, toy_bundle):
    """Ray fuses map stages and gives the fused task the larger batch size: a decode
    batch of 4 rows once made one task read 4 shards, here all 3 (no parallel reads,
    no streaming)."""
    from cmalign.scale.pipeline import build_dataset

    write_toy_shards(tmp_path / "in", n=12, per_shard=4)
    shards = resolve_inputs(str(tmp_path / "in")).shards
    # batch 4 = shard size: each shard's end row comes alone, in a block without captions
    ds, _ = build_dataset(shards, model="toy", expected_key=cmalign.cache.model_key(toy_bundle),
                          bundle=toy_bundle, texts=False, batch_size=4, autocast=False, columns={},
                          cache_dir=None, env={})
    with deadline(300):
        kinds = [k for b in ds.iter_batches(batch_size=None, batch_format="numpy") for k in b["kind"]]
    assert sorted(kinds) == ["end"] * 3 + ["sample"] * 12
    tasks = re.search(r"MapBatches\(read_and_decode_stage\)\S*: (\d+) tasks executed", ds.stats())
    assert tasks and int(tasks.group(1)) == 3, ds.stats()[:500]


def test_parquet_in_float16_is_within_its_precision(ray_local, tmp_path, toy_bundle):
    write_toy_shards(tmp_path / "in", n=20, per_shard=10, format="parquet")
    with deadline(300):
        manifest = embed_shards("toy", str(tmp_path / "in"), tmp_path / "out", dtype="float16", log=lambda _: None)
    assert manifest["counts"]["embedded"] == 20 and manifest["dtype"] == "float16"
    import pyarrow as pa
    import pyarrow.parquet as pq

    stored = pq.read_table(tmp_path / "out" / "part-00000.parquet").schema.field("image_embedding").type
    assert stored.value_type == pa.float16() and stored.list_size == 128
    vectors, meta = read_embeddings(tmp_path / "out")
    samples = [s for shard in resolve_inputs(str(tmp_path / "in")).shards for s in read_shard(shard)]
    ref = cmalign.embed_images(toy_bundle, [decode_image(s.image) for s in samples], progress=False)
    assert meta["key"] == [s.key for s in samples]
    assert torch.allclose(torch.from_numpy(vectors), ref, atol=2e-3)  # float16: 11 bits of mantissa


def test_an_out_folder_of_another_model_is_refused(tmp_path):
    write_toy_shards(tmp_path / "in", n=4, per_shard=4)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "manifest.json").write_text(json.dumps({"model_key": "other-123", "dtype": "float32"}))
    with pytest.raises(ValueError, match="model_key='other-123'.*choose another --out"):
        embed_shards("toy", str(tmp_path / "in"), tmp_path / "out", log=lambda _: None)


@pytest.mark.slow
def test_a_killed_run_resumes_without_recomputing_finished_shards(ray_local, tmp_path, toy_bundle):
    write_toy_shards(tmp_path / "src", n=24, per_shard=8)  # 00000..00002
    (tmp_path / "in").mkdir()
    (tmp_path / "src" / "00000.tar").rename(tmp_path / "in" / "00000.tar")
    for name in ("00001.tar", "00002.tar"):  # named pipes: their reads wait for a writer,
        os.mkfifo(tmp_path / "in" / name)  # so these shards are in flight when killed
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "cmalign.scale", "embed", "--model", "toy",
           "--input", str(tmp_path / "in"), "--out", str(out), "--batch-size", "4"]
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        start = time.monotonic()
        while not list((out / "_shards").glob("*.json")):
            assert proc.poll() is None, "the run ended before any shard was complete"
            assert time.monotonic() - start < 300, "no shard completed within 300 s"
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    done = {p.stem: p.stat().st_mtime_ns for p in (out / "_shards").glob("*.json")}
    parts = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert sorted(done) == ["00000"] and sorted(parts) == ["part-00000.parquet"]
    for name in ("00001.tar", "00002.tar"):  # the shards arrive: real files now
        (tmp_path / "in" / name).unlink()
        (tmp_path / "src" / name).rename(tmp_path / "in" / name)
    lines = []
    with deadline(600):
        manifest = embed_shards("toy", str(tmp_path / "in"), out, batch_size=4, log=lines.append)
    assert "skipped 1 of 3 shards: already complete" in lines
    assert manifest["counts"]["embedded"] == 24 and manifest["status"] == "complete"
    for name, mtime in parts.items():  # finished parts were not rewritten
        assert (out / name).stat().st_mtime_ns == mtime
    samples = [s for shard in resolve_inputs(str(tmp_path / "in")).shards for s in read_shard(shard)]
    vectors, meta = read_embeddings(out)
    assert meta["key"] == [s.key for s in samples]
    ref = cmalign.embed_images(toy_bundle, [decode_image(s.image) for s in samples], progress=False)
    assert torch.allclose(torch.from_numpy(vectors), ref, atol=1e-5)
    time.sleep(2)
    left = subprocess.run(["pgrep", "-g", str(proc.pid)], capture_output=True, text=True).stdout
    assert not left.strip(), f"processes of the killed run are left: {left}"
