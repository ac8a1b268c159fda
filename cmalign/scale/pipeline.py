"""The Ray Data stages of ``python -m cmalign.scale embed``: read, decode, embed.

One dataset flows through three stages, streamed (no stage waits for the
previous one to finish, and memory is bounded by Ray's object store):

1. **read** (CPU task per shard, :func:`read_stage`): a shard's samples as
   blocks of rows (key, caption, source, image bytes), then one ``end`` row
   carrying how many rows the shard produced (and its read error, if any) —
   the driver knows a shard is whole when it has seen that many rows;
2. **decode and preprocess** (:func:`decode_stage`, in the same task as the
   read, block by block: :func:`read_and_decode_stage`): image bytes to the
   model's pixel values through
   :func:`cmalign.embed.preprocess_images`; a sample that does not decode,
   or has no caption when texts are embedded, becomes a ``failure`` row with
   its reason;
3. **embed** (:class:`Embedder`, an autoscaling actor pool; one GPU per
   actor where the cluster has GPUs): :func:`cmalign.embed.embed_pixels` and
   :func:`cmalign.embed.embed_texts`, so the vectors are those of
   ``embed_images`` / ``embed_texts``.

Assembled by :func:`build_dataset`; driven by :mod:`cmalign.scale.embed`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np

from .folders import read_shard
from .readers import ShardReadError, decode_image
from .shards import Shard

#: RAM of a Python process with torch and transformers imported, before weights
#: (Ray measured 412-445 MiB for the toy model's actor, whose weights are 6 MiB).
PROCESS_MEMORY = 512 * 2**20

META = ("kind", "shard", "index", "key", "caption", "source", "reason")


class _ConfigOnly:
    """Stands in for the model in a bundle that only preprocesses (no weights shipped)."""

    def __init__(self, config):
        self.config = config


def preprocessing_bundle(bundle):
    """The bundle without its weights: enough for ``preprocess_images``, cheap to ship."""
    return dataclasses.replace(bundle, model=_ConfigOnly(bundle.model.config))


def _table(rows: list[dict]):
    from .extra import require

    pa = require("pyarrow")
    names = (*META, "image")
    types = {"index": pa.int64(), "image": pa.binary()}
    return pa.table(
        {n: pa.array([r[n] for r in rows], type=types.get(n, pa.string())) for n in names}
    )


def read_stage(batch: dict, *, caption_lines: bool, columns: dict, rows_per_block: int):
    """Yield blocks of sample rows for each shard in ``batch``, then its ``end`` row."""
    for i in range(len(batch["path"])):
        shard = Shard(
            str(batch["path"][i]), str(batch["kind"][i]), str(batch["id"][i]),
            int(batch["start"][i]), int(batch["stop"][i]),
        )
        rows, n, error = [], 0, ""
        try:
            for sample in read_shard(shard, caption_lines=caption_lines, **columns):
                rows.append({
                    "kind": "failure" if sample.reason else "sample", "shard": shard.id,
                    "index": n, "key": sample.key, "source": sample.source,
                    "caption": sample.captions[0] if sample.captions else None,
                    "reason": sample.reason or "", "image": sample.image,
                })
                n += 1
                if len(rows) == rows_per_block:
                    yield _table(rows)
                    rows = []
        except ShardReadError as err:
            error = str(err)
        rows.append({"kind": "end", "shard": shard.id, "index": n, "key": "", "caption": None,
                     "source": shard.path, "reason": error, "image": None})
        yield _table(rows)


def read_and_decode_stage(batch: dict, *, caption_lines: bool, columns: dict, rows_per_block: int,
                          preprocess_bundle, pixel_shape: tuple, texts: bool):
    """:func:`read_stage` then :func:`decode_stage`, block by block, in one task per shard.

    One stage, not two ``map_batches`` calls: Ray fuses consecutive map stages and
    gives the fused task the larger batch size, so a decode batch of 64 rows made
    each read task take 64 *shards* (all of them, here) — one task, one block, no
    streaming and no parallel reads.
    """
    for table in read_stage(batch, caption_lines=caption_lines, columns=columns,
                            rows_per_block=rows_per_block):
        rows = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
        yield decode_stage(rows, preprocess_bundle=preprocess_bundle, pixel_shape=pixel_shape,
                           texts=texts)


def decode_stage(batch: dict, *, preprocess_bundle, pixel_shape: tuple, texts: bool) -> dict:
    """Image bytes -> pixel values (n, *pixel_shape); bad samples become failure rows."""
    from ..embed import preprocess_images

    kind = batch["kind"].astype(object)
    reason = batch["reason"].astype(object)
    decoded: dict[int, object] = {}
    for i in np.flatnonzero(kind == "sample"):
        if texts and not batch["caption"][i]:
            kind[i], reason[i] = "failure", "no caption (.txt, .json 'caption' or caption column), needed by --texts"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # RGB conversions are not failures
                decoded[i] = decode_image(batch["image"][i], where="image")
        except ValueError as err:
            kind[i], reason[i] = "failure", str(err)
    pixels = np.zeros((len(kind), *pixel_shape), dtype=np.float32)
    if decoded:
        rows = list(decoded)
        try:
            pixels[rows] = preprocess_images(preprocess_bundle, [decoded[i] for i in rows]).numpy()
        except Exception:  # noqa: BLE001 - find the one image the processor refuses
            for i in rows:
                try:
                    pixels[i] = preprocess_images(preprocess_bundle, [decoded[i]]).numpy()[0]
                except Exception as err:  # noqa: BLE001
                    kind[i], reason[i] = "failure", f"preprocessing failed ({err})"
    out = {name: batch[name] for name in META}
    out.update(kind=kind, reason=reason, pixel_values=pixels)
    return out


class Embedder:
    """An actor holding the model: pixel values (and captions) -> unit embeddings.

    Parameters
    ----------
    model : str
        What ``load_clip`` is given (hub id, folder or "toy").
    expected_key : str
        :func:`cmalign.cache.model_key` on the driver; an actor that loads
        other weights (another node's cache) refuses to start.
    """

    def __init__(self, model: str, *, expected_key: str, device: str, texts: bool,
                 autocast: bool, threads: int, cache_dir: str | None, env: dict):
        os.environ.update(env)
        import torch

        from ..cache import model_key
        from ..models import load_clip

        torch.set_num_threads(max(1, threads))
        self.bundle = load_clip(model, device=device, cache_dir=cache_dir)
        key = model_key(self.bundle)
        if key != expected_key:
            raise RuntimeError(
                f"model {model!r} loaded on this Ray node has other weights ({key}) "
                f"than on the driver ({expected_key}): give every node the same model files"
            )
        self.texts, self.autocast = texts, autocast

    def __call__(self, batch: dict) -> dict:
        import torch

        from ..embed import embed_pixels, embed_texts

        ok = np.asarray(batch["kind"] == "sample")
        n, dim = len(ok), self.bundle.embed_dim
        out = {name: batch[name] for name in META}
        image_emb = np.zeros((n, dim), dtype=np.float32)
        if ok.any():
            pixels = torch.from_numpy(np.ascontiguousarray(batch["pixel_values"][ok]))
            image_emb[ok] = embed_pixels(self.bundle, pixels, autocast=self.autocast).numpy()
        out["image_embedding"] = image_emb
        if self.texts:
            text_emb = np.zeros((n, dim), dtype=np.float32)
            if ok.any():
                captions = [str(c) for c in batch["caption"][ok]]
                text_emb[ok] = embed_texts(
                    self.bundle, captions, batch_size=len(captions), progress=False,
                    autocast=self.autocast,
                ).numpy()
            out["text_embedding"] = text_emb
        return out


def build_dataset(shards: list[Shard], *, model: str, expected_key: str, bundle,
                  texts: bool, batch_size: int, autocast: bool, columns: dict,
                  cache_dir: str | None, env: dict):
    """The streamed Ray dataset of embedded rows for ``shards`` (not yet executed)."""
    from .extra import require

    ray = require("ray")
    require("ray.data")
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 1)), int(resources.get("GPU", 0))
    task_cpus = min(1.0, cpus / 2)  # never a pool shape that starves the read tasks
    if gpus:
        pool, actor = ray.data.ActorPoolStrategy(min_size=1, max_size=gpus), {"num_gpus": 1, "num_cpus": 1}
        device, threads = "cuda", 1
    else:
        max_actors = max(1, int(cpus // 4))
        pool = ray.data.ActorPoolStrategy(min_size=1, max_size=max_actors)
        actor, device = {"num_cpus": min(1.0, cpus / 2)}, "cpu"
        threads = max(1, int(cpus // max_actors))
    # the actor's RAM as a resource, so actors are placed where they fit (a process
    # with torch and transformers imported, plus twice the weights), and the decode
    # tasks (other resource needs) are not fused into them by Ray
    actor["memory"] = PROCESS_MEMORY + 2 * sum(
        p.numel() * p.element_size() for p in bundle.model.parameters())
    pixel_shape = tuple(_probe_shape(bundle))
    items = [dataclasses.asdict(s) for s in shards]
    ds = ray.data.from_items(items, override_num_blocks=max(1, len(items)))
    ds = ds.map_batches(  # one shard per task (batch_size=1), decoded blocks streamed out
        read_and_decode_stage, batch_size=1, num_cpus=task_cpus,
        fn_kwargs={"caption_lines": False, "columns": columns, "rows_per_block": batch_size,
                   "preprocess_bundle": preprocessing_bundle(bundle),
                   "pixel_shape": pixel_shape, "texts": texts},
    )
    ds = ds.map_batches(
        Embedder, batch_size=batch_size, batch_format="numpy", compute=pool,
        fn_constructor_args=(model,),
        fn_constructor_kwargs={"expected_key": expected_key, "device": device, "texts": texts,
                               "autocast": autocast, "threads": threads,
                               "cache_dir": cache_dir, "env": env},
        **actor,
    )
    return ds, {"device": device, "gpus": gpus, "cpus": cpus, "actors_max": pool.max_size,
                "actor_threads": threads}


def _probe_shape(bundle) -> tuple:
    from PIL import Image

    from ..embed import preprocess_images

    probe = Image.new("RGB", (64, 48))
    return tuple(preprocess_images(preprocessing_bundle(bundle), [probe]).shape[1:])
