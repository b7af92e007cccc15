"""Evaluation: the task's metric sums over a split, as means; and long evaluations that stop when asked.

Metrics are sums over real examples plus 'count' (vaecnn.engine.Task); `means` divides once per pass, so
padded batches count nothing. `resumable_sums` is the loop of an evaluation that takes minutes (the
VAE's importance-weighted log p(x)): on SIGTERM or SIGINT it saves its partial sums and position between
batches, and the rerun continues from there to the same figure as a pass never stopped.
"""

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from absl import logging

from vaecnn import distributed, files, preemption, rng, sharding
from vaecnn.engine import Batch, Metrics, Params, Task


class Batcher(Protocol):
    """An evaluation split: `eval_batches()` yields every example once, padded batches masked."""
    num_batches: int

    def eval_batches(self) -> Iterator[Batch]:
        ...

    def largest_batch(self) -> Batch:
        """The batch with the most elements: what a step's peak memory depends on."""
        ...


def make_eval_step(task: Task, mesh: jax.sharding.Mesh):
    replicated, data = sharding.replicated(mesh), sharding.batch_sharded(mesh)
    return jax.jit(task.evaluate, in_shardings=(replicated, data, replicated), out_shardings=replicated)


def _add(totals: Metrics | None, metrics: Metrics) -> Metrics:
    return metrics if totals is None else jax.tree.map(jnp.add, totals, metrics)


def means(sums: Mapping[str, Any]) -> dict[str, float]:
    """Metric sums -> per-example means ('count' and per-step sums handled), as Python floats."""
    host = jax.device_get(dict(sums))
    count = float(host.pop("count"))
    steps = float(host.pop("steps", 0.0))
    result = {}
    for name, value in host.items():
        if name.endswith("_sum"):  # per-step quantities (objective, gradient norm): mean over steps
            result[name[:-len("_sum")]] = float(value) / max(steps, 1.0)
        else:
            result[name] = float(value) / max(count, 1.0)
    result["count"] = int(count)
    return result


def evaluate(eval_step, params: Params, batcher: Batcher, key: jax.Array,
             batch_sharding: jax.sharding.Sharding) -> dict[str, float]:
    """Means of the task's metrics over one exhaustive pass; `key` is fixed by the caller so the
    same parameters always get the same numbers."""
    totals = None
    for index, batch in enumerate(batcher.eval_batches()):
        batch = jax.device_put(batch, batch_sharding)
        totals = _add(totals, eval_step(params, batch, rng.batch_key(key, index)))
    return means(totals)


def resumable_sums(what: str, position_file: str, batches: Iterator[Batch], num_batches: int,
                   batch_sums: Callable[[int, Batch], Mapping[str, Any]],
                   log: Callable[[int, dict[str, float]], None] = lambda index, totals: None) -> dict[str, float]:
    """Sums of batch_sums(index, batch) over `batches`, as Python floats, saved in `position_file` and
    raising Preempted when a stop is requested between two batches; a later call with the same `what`
    starts after the saved batch (from the saved sums), so it ends with the same floats as one pass.

    `what` names the evaluation exactly (its checkpoint, sample count, seed): a position file of another
    evaluation is ignored. log(index, totals) runs after each batch.
    """
    saved = files.read_json(position_file) if os.path.exists(position_file) else {}
    start, totals = (saved["next_batch"], saved["totals"]) if saved.get("what") == what else (0, {})
    if start:
        logging.info("continuing %s at batch %d of %d", what, start + 1, num_batches)
    for index, batch in enumerate(batches):
        if index < start:
            continue
        for name, value in jax.device_get(dict(batch_sums(index, batch))).items():
            totals[name] = totals.get(name, 0.0) + float(value)
        log(index, totals)
        if index + 1 < num_batches and preemption.requested():
            files.write_json(position_file, {"what": what, "next_batch": index + 1, "totals": totals})
            raise preemption.Preempted(
                f"stopped {what} after batch {index + 1} of {num_batches} on {preemption.signal_name()}; its position "
                f"is saved in {position_file}: rerun the same command to continue")
    if os.path.exists(position_file) and distributed.is_writer():
        os.remove(position_file)
    return totals
