"""Scale-out of `generate` and `judge`: their work split into shards on a Ray cluster.

`<stage>.executor: ray` runs a stage's units of work (a batch of prompts, a checkpoint's worth of
pairs) on Ray actors, one per shard. Each actor builds its model once (the policy, the judge) and is
handed units one at a time as it finishes the last, so the driver sees every unit complete (and the
judge checkpoints it) in whatever order the shards finish. The units are the same as those of the
in-process path and carry their own seeds, so the results are the same too (rlaif/training/generation.py).

- `ray_address: null` starts a local cluster for the stage and shuts it down after (or, where the
  variable RAY_ADDRESS is set, attaches to that cluster); `auto` attaches to the cluster started on
  this machine (`ray start`); `host:6379` or `ray://host:10001` (the Ray Client, which
  needs `ray[client]`) attach to a remote one. A process that already called `ray.init()` (a test, a
  notebook) keeps its own cluster. Remote workers need this package installed and the model paths
  readable at the same place.
- `ray_shards: null` is one shard per CPU of the cluster, or per `ray_num_gpus_per_shard` of its GPUs.
- Every shard sets torch's thread count to the driver's: CPU kernels may sum in a different order
  with a different thread count, and the results would then differ in the last bits.
- An address where no cluster answers is refused at once, naming the address, before any work
  starts (Ray itself retries an unreachable GCS for minutes).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

from rlaif.errors import RlaifError

CONNECT_TIMEOUT_S = 5.0


def _import_ray(stage: str, error: type[RlaifError]):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage reporting, in the driver or its workers
    try:
        import ray
    except ImportError:
        raise error(f"{stage}.executor 'ray' needs the package ray (pip install 'ray[client]'); "
                    f"or set {stage}.executor to local") from None
    return ray


def check_reachable(address: str, stage: str, error: type[RlaifError], timeout_s: float = CONNECT_TIMEOUT_S) -> None:
    """A TCP connection to a `host:port` or `ray://host:port` address, or a clear error naming it."""
    if address == "auto":
        return  # Ray finds the local cluster itself, and says at once when there is none
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host, port = None, None
    if not host or not port:
        raise error(f"{stage}.ray_address {address!r}: not a Ray address (auto, host:port or ray://host:port)")
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as err:
        raise error(f"{stage}.ray_address {address!r}: no Ray cluster answers there ({err})") from None


@dataclass
class ShardPool:
    """Shards on a connected cluster: `run` builds one actor per shard and feeds it units of work."""

    ray: Any
    shards: int
    actor_options: dict
    stage: str
    error: type[RlaifError]

    def run(self, build: Callable, args: tuple, method: str, items: list[tuple],
            on_result: Callable[[int, Any], None]) -> int:
        """Call `build(*args).<method>(*items[i])` for every i on the shards, and `on_result(i, result)`
        in this process as each completes (any order). Returns the number of shards used."""
        import torch

        ray = self.ray
        if not items:
            return 0
        threads = torch.get_num_threads()
        actor = ray.remote(_Shard).options(**self.actor_options)
        actors = [actor.remote(build, args, threads) for _ in range(min(self.shards, len(items)))]
        queue = iter(range(len(items)))
        pending: dict = {}

        def feed(handle) -> None:
            index = next(queue, None)
            if index is not None:
                pending[handle.call.remote(method, *items[index])] = (handle, index)

        try:
            for handle in actors:
                feed(handle)
            while pending:
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                handle, index = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:
                    raise _unwrap(err, self.stage, self.error) from None
                on_result(index, result)
                feed(handle)
        finally:
            for handle in actors:
                ray.kill(handle)
        return len(actors)


class _Shard:
    """A Ray actor holding one built worker (a policy, a judge); torch threads set as in the driver."""

    def __init__(self, build: Callable, args: tuple, threads: int):
        import torch

        torch.set_num_threads(threads)
        self.worker = build(*args)

    def call(self, method: str, *args):
        return getattr(self.worker, method)(*args)


def _unwrap(err: BaseException, stage: str, error: type[RlaifError]) -> BaseException:
    """The project error that a shard raised (bad input, a judge that cannot work), else a clear one."""
    chain: list[BaseException] = []
    cause: BaseException | None = err
    while cause is not None and all(cause is not seen for seen in chain):
        chain.append(cause)
        cause = getattr(cause, "cause", None) or cause.__cause__
    raised = [c for c in chain if isinstance(c, RlaifError)]
    return raised[-1] if raised else error(f"{stage}: a Ray shard failed: {err}")


@contextlib.contextmanager
def ray_shards(settings, stage: str, error: type[RlaifError]) -> Iterator[ShardPool]:
    """Connect to (or start) the cluster that `settings` (a GenerateConfig or JudgeConfig) names and size the
    shards; a cluster started here is shut down on leaving."""
    ray = _import_ray(stage, error)
    address = settings.ray_address or os.environ.get("RAY_ADDRESS") or None
    started = False
    if not ray.is_initialized():
        if address:
            check_reachable(address, stage, error)
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:  # a fresh local cluster for this stage, even where another runs on this machine
                ray.init(address="local", include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
            raise error(f"{stage}.ray_address {address!r}: cannot connect to a Ray cluster ({err})") from None
        started = True
    try:
        yield _pool(ray, settings, stage, error)
    finally:
        if started:
            ray.shutdown()


def _pool(ray, settings, stage: str, error: type[RlaifError]) -> ShardPool:
    resources = ray.cluster_resources()
    cpus, gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
    per_gpu = float(settings.ray_num_gpus_per_shard)
    if per_gpu > 0:
        if gpus < per_gpu:
            raise error(f"{stage}.ray_num_gpus_per_shard {per_gpu:g}: the Ray cluster has {gpus:g} GPUs")
        shards = settings.ray_shards or max(1, int(gpus // per_gpu))
        if shards * per_gpu > gpus:
            raise error(f"{stage}.ray_shards {shards} x ray_num_gpus_per_shard {per_gpu:g} needs "
                        f"{shards * per_gpu:g} GPUs; the Ray cluster has {gpus:g}")
    else:
        shards = settings.ray_shards or max(1, int(cpus))
    # every shard must fit at once (shards that wait for a CPU would never take their units)
    options: dict = {"num_cpus": min(1.0, math.floor(cpus / shards * 1e4) / 1e4)}
    if per_gpu > 0:
        options["num_gpus"] = per_gpu
    return ShardPool(ray, shards, options, stage, error)


def run_sharded(settings, stage: str, error: type[RlaifError], build: Callable, args: tuple, method: str,
                items: list[tuple], on_result: Callable[[int, Any], None]) -> int:
    """`ray_shards(...)` and `ShardPool.run(...)` in one call."""
    with ray_shards(settings, stage, error) as pool:
        return pool.run(build, args, method, items, on_result)
