"""Start (or join) the Ray cluster a scale command runs on, with laptop-safe defaults.

``--address ADDRESS`` joins an existing cluster (``ray start --head`` on one
machine, ``ray start --address=HEAD:6379`` on the others, or KubeRay).
Without it, :func:`ray_session` starts a local Ray for the duration of the
command and stops it afterwards, with:

- ``num_cpus`` = the machine's cores; an object store of 10 % of RAM, at
  least 200 MiB and at most 2 GiB (Ray's default is 30 %);
- no dashboard, usage statistics off (``RAY_USAGE_STATS_ENABLED=0``);
- token authentication on, with a fresh token held in this process's
  environment only (Ray 2.60's default writes one to ``~/.ray/auth_token``;
  nothing is written into the home folder here). Ray's own session logs go
  to its temporary folder (``/tmp/ray``), which the start-up line says.

A Ray already initialised in this process (a test fixture, a notebook) is
used as it is and left running. Used by :mod:`cmalign.scale.embed`.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
from collections.abc import Callable, Iterator

from .extra import require

STORE_MIN, STORE_MAX = 200 * 2**20, 2 * 2**30


def local_settings(num_cpus: int | None = None, object_store_memory: int | None = None) -> dict:
    """``ray.init`` keyword arguments for a local Ray on this machine."""
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 * 2**30
    return {
        "num_cpus": num_cpus or os.cpu_count() or 1,
        "object_store_memory": object_store_memory
        or int(min(STORE_MAX, max(STORE_MIN, 0.1 * ram))),
        "include_dashboard": False,
        "log_to_driver": False,
    }


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    old = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in old.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _local_auth() -> None:
    """Token auth with a per-process token in the environment, set before Ray reads it."""
    if {"RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"} & set(os.environ):
        return  # the user chose
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    if "ray" in sys.modules:  # imported already: make it read the mode again
        with contextlib.suppress(ImportError, AttributeError):
            from ray._raylet import Config

            Config.initialize("")


@contextlib.contextmanager
def ray_session(
    address: str | None = None,
    *,
    num_cpus: int | None = None,
    object_store_memory: int | None = None,
    log: Callable[[str], None] = print,
) -> Iterator[object]:
    """The ``ray`` module, initialised: joined at ``address`` or started locally.

    Stops only a Ray it started itself.
    """
    running = "ray" in sys.modules and sys.modules["ray"].is_initialized()
    if address is None and not running:
        _local_auth()
    ray = require("ray")
    require("ray.data")
    if ray.is_initialized():
        yield ray
        return
    quiet = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_raylet_start_wait_time_s": "120"}  # busy laptops
    with _environment({k: os.environ.get(k, v) for k, v in quiet.items()}):
        if address is None:
            settings = local_settings(num_cpus, object_store_memory)
            try:
                ray.init(**settings)
            except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception here
                if "timed out during startup" not in str(err):
                    raise
                raise RuntimeError(
                    "the local Ray did not start within its 30 s limit (a busy machine?): "
                    "run again, or start Ray once with `ray start --head` and pass --address"
                ) from err
            log(
                f"started a local Ray: {settings['num_cpus']} CPUs, object store "
                f"{settings['object_store_memory'] / 2**20:.0f} MiB, no dashboard, "
                "session logs in Ray's temp folder (/tmp/ray)"
            )
        else:
            ray.init(address=address, log_to_driver=False)
            res = ray.cluster_resources()
            log(
                f"joined the Ray cluster at {address}: {res.get('CPU', 0):.0f} CPUs, "
                f"{res.get('GPU', 0):.0f} GPUs"
            )
        ray.data.DataContext.get_current().enable_progress_bars = False
        try:
            yield ray
        finally:
            ray.shutdown()
