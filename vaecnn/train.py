"""The one training loop: jitted steps, epochs, evaluation, checkpoints, resume, metrics, NaN guard.

Every experiment (VAE, RNN, CNN) supplies a `Task` (how to initialise, what loss to minimise, what
to measure) and batchers; `fit` does the rest:

    state, batch, key -> train_step -> state, metrics          one jitted, donated, sharded function
    per epoch: metrics summed on the device, read on the host once, evaluation on every eval split,
               a checkpoint, one line of metrics.jsonl, and the caller's `on_epoch_end` hook.

Randomness is a pure function of (seed, epoch, step): the shuffle and the step keys of epoch e are
derived with fold_in from the seed, so a run resumed from epoch e's checkpoint draws exactly the
numbers an uninterrupted run would have drawn, and ends with the same parameters.
"""

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from vaecnn import report, sharding
from vaecnn.checkpoints import Checkpointer
from vaecnn.errors import ConfigError, TrainingDiverged

Params = Any
Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]


class Task(Protocol):
    """What a model contributes to training. All three functions are pure and jit-compatible.

    Metrics are *sums* over the batch's real examples (weighted by batch['mask']) plus 'count', the
    number of real examples; the loop divides by the total count once per epoch, so every example
    counts once however the batches were padded.
    """

    def init_params(self, key: jax.Array, batch: Batch) -> Params:
        ...

    def loss(self, params: Params, batch: Batch, key: jax.Array) -> tuple[jax.Array, Metrics]:
        """Returns (scalar objective to minimise, metric sums)."""
        ...

    def evaluate(self, params: Params, batch: Batch, key: jax.Array) -> Metrics:
        """Metric sums on a batch, without training-time randomness such as dropout."""
        ...


class Batcher(Protocol):
    num_batches: int

    def iterate(self, key: jax.Array | None) -> Iterator[Batch]:
        ...


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training; a pytree of arrays, so it checkpoints as is."""
    step: jax.Array
    params: Params
    opt_state: optax.OptState


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How long and how to train; built from flags by the experiments."""
    epochs: int
    batch_size: int
    seed: int = 0
    eval_batch_size: int = 1000
    keep_checkpoints: int = 2
    log_every_seconds: float = 30.0
    # Model selection: keep the parameters of the epoch with the best value of `select_metric`
    # (an eval split and metric, e.g. "dev/accuracy"); None keeps the last epoch's.
    select_metric: str | None = None
    select_mode: str = "max"

    def __post_init__(self):
        if self.epochs < 1:
            raise ConfigError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError(f"batch sizes must be >= 1, got {self.batch_size} and {self.eval_batch_size}")
        if self.select_mode not in ("max", "min"):
            raise ConfigError(f"select_mode must be 'max' or 'min', got {self.select_mode!r}")


@dataclasses.dataclass
class FitResult:
    state: TrainState
    params: Params                   # the selected parameters (best epoch, or the last)
    history: list[dict[str, Any]]    # one record per epoch, as in metrics.jsonl
    selected_epoch: int
    train_seconds: float             # time in training steps (compilation included), over all runs
    examples_seen: int


def make_train_step(task: Task, optimizer: optax.GradientTransformation, mesh: jax.sharding.Mesh,
                    post_update: Callable[[Params], Params] | None = None):
    """The jitted step (state, batch, key) -> (state, metrics): parameters replicated, the batch
    split over the mesh's data axis, the old state's buffers donated to the new one.

    post_update: an optional pure projection applied to the parameters after each update (e.g.
    Kim's max-norm constraint).
    """

    def train_step(state: TrainState, batch: Batch, key: jax.Array) -> tuple[TrainState, Metrics]:
        (objective, metrics), grads = jax.value_and_grad(task.loss, has_aux=True)(state.params, batch, key)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        if post_update is not None:
            params = post_update(params)
        metrics = dict(metrics, objective_sum=objective, steps=jnp.ones((), jnp.float32),
                       grad_norm_sum=optax.global_norm(grads))
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    replicated, data = sharding.replicated(mesh), sharding.batch_sharded(mesh)
    return jax.jit(train_step, in_shardings=(replicated, data, replicated),
                   out_shardings=(replicated, replicated), donate_argnums=0)


def make_eval_step(task: Task, mesh: jax.sharding.Mesh):
    replicated, data = sharding.replicated(mesh), sharding.batch_sharded(mesh)
    return jax.jit(task.evaluate, in_shardings=(replicated, data, replicated), out_shardings=replicated)


def init_state(task: Task, optimizer: optax.GradientTransformation, batch: Batch, key: jax.Array,
               mesh: jax.sharding.Mesh) -> TrainState:
    """Initial parameters and optimizer state, replicated over the mesh."""

    def init(batch, key):
        params = task.init_params(key, batch)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))

    return jax.jit(init, out_shardings=sharding.replicated(mesh))(batch, key)


def count_params(params: Params) -> int:
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(params)))


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
    for index, batch in enumerate(batcher.iterate(None)):
        batch = jax.device_put(batch, batch_sharding)
        totals = _add(totals, eval_step(params, batch, jax.random.fold_in(key, index)))
    return means(totals)


class _Progress:
    """Logs steps/s and an ETA at most every `every_seconds` (reads only host-side counters)."""

    def __init__(self, total_epochs: int, steps_per_epoch: int, every_seconds: float):
        self.total_epochs, self.steps_per_epoch, self.every = total_epochs, steps_per_epoch, every_seconds
        self.start = self.last = time.perf_counter()
        self.steps_done = 0

    def step(self, epoch: int, step_in_epoch: int) -> None:
        self.steps_done += 1
        now = time.perf_counter()
        if now - self.last < self.every:
            return
        self.last = now
        rate = self.steps_done / (now - self.start)
        remaining = (self.total_epochs - epoch) * self.steps_per_epoch + self.steps_per_epoch - step_in_epoch - 1
        logging.info("epoch %d/%d  step %d/%d  %.1f steps/s  ETA %s", epoch, self.total_epochs,
                     step_in_epoch + 1, self.steps_per_epoch, rate, _format_seconds(remaining / rate))


def _what_is_kept(checkpointer: Checkpointer, like: Any, workdir: str, failed_epoch: int) -> str:
    """What a diverged run leaves, stated only as far as it was just checked: the newest checkpoint is
    re-read and compared with its digests, and metrics.jsonl is read back."""
    lines = report.MetricsLog(os.path.join(workdir, "metrics.jsonl")).read()
    metrics = (f"metrics.jsonl ends at epoch {lines[-1]['epoch']}" if lines else "metrics.jsonl has no epoch")
    newest = checkpointer.latest_epoch()
    if newest is None:
        return f"no checkpoint was written in {workdir} before epoch {failed_epoch}; {metrics}"
    if checkpointer.verify(newest, like):
        return f"the checkpoint of epoch {newest} in {workdir} was re-read and matches its digests; {metrics}"
    return f"the newest checkpoint (epoch {newest}) in {workdir} did NOT read back intact; {metrics}"


def largest_batch(batcher: Batcher) -> Batch:
    """The batcher's batch with the most elements: what the step's peak memory depends on.

    Batchers with batches of several shapes (length buckets) say which is largest by a method of the
    same name; for the others, any training batch has the one shape.
    """
    if hasattr(batcher, "largest_batch"):
        return batcher.largest_batch()
    return next(batcher.iterate(jax.random.key(0)))


def free_memory_bytes(device: jax.Device) -> int | None:
    """Memory the device can still allocate: the accelerator's allocator limit minus what it holds, or
    on a CPU the host's available memory (Linux's MemAvailable); None where neither is known."""
    stats = device.memory_stats()
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check_fits_in_memory(what: str, step, params_or_state: Any, batch: Batch, key: jax.Array) -> None:
    """Raises ConfigError, before anything is allocated, when `step` (a jitted train or eval step) on
    `batch` needs more memory than the device has free. `what` names the step in the message.

    Why: a batch that cannot fit (a long text bucket, a large --batch_size) otherwise fails deep in
    XLA as RESOURCE_EXHAUSTED after data loading and compilation, or, on a CPU, takes the machine into
    swap. The compiled step's own accounting (temporaries plus the arguments and outputs it does not
    alias) is the measure; compiling it here fills the same cache the first call uses.
    """
    stats = step.lower(params_or_state, batch, key).compile().memory_analysis()
    if stats is None:
        return
    needed = stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes - \
        stats.alias_size_in_bytes
    free = free_memory_bytes(jax.local_devices()[0])
    if free is not None and needed > free:
        shapes = ", ".join(f"{name} {'x'.join(map(str, value.shape))}" for name, value in batch.items()
                           if getattr(value, "ndim", 0) >= 2)
        raise ConfigError(f"one {what} on the largest batch ({shapes}) needs {needed / 2**30:.1f} GiB but "
                          f"{free / 2**30:.1f} GiB are free on {jax.local_devices()[0].platform}; lower the batch "
                          "size (--batch_size, --eval_batch_size) or, for text, --max_len")


def check_eval_fits_in_memory(eval_step, params: Params, batcher: Batcher, key: jax.Array,
                              batch_sharding: jax.sharding.Sharding) -> None:
    check_fits_in_memory("evaluation step", eval_step, params, jax.device_put(largest_batch(batcher), batch_sharding),
                         key)


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def fit(task: Task, optimizer: optax.GradientTransformation, train_data: Batcher,
        eval_data: Mapping[str, Batcher], config: TrainConfig, workdir: str, *,
        mesh: jax.sharding.Mesh | None = None,
        post_update: Callable[[Params], Params] | None = None,
        on_epoch_end: Callable[[int, Params], None] | None = None) -> FitResult:
    """Trains `task` for config.epochs epochs, resuming from the newest checkpoint in workdir.

    Writes workdir/metrics.jsonl (one line per epoch: 'train/<metric>' and '<split>/<metric>'
    means, seconds) and workdir/checkpoints/<epoch>. Stops with TrainingDiverged if the objective
    becomes NaN or infinite; the checkpoints and metrics of earlier epochs stay as they were.
    """
    mesh = sharding.data_mesh() if mesh is None else mesh
    sharding.check_batch_size(config.batch_size, mesh)
    batch_sharding = sharding.batch_sharded(mesh)
    report.make_workdir(workdir)
    train_key, init_key, eval_key = jax.random.split(jax.random.key(config.seed), 3)

    first_batch = jax.device_put(next(train_data.iterate(jax.random.fold_in(init_key, 1))), batch_sharding)
    state = init_state(task, optimizer, first_batch, init_key, mesh)
    select = config.select_metric is not None
    checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=config.keep_checkpoints)
    metrics_log = report.MetricsLog(os.path.join(workdir, "metrics.jsonl"))

    # The selected parameters are a copy: the step donates (frees) the state's own buffers.
    best_params = jax.tree.map(jnp.copy, state.params) if select else None
    record = {"epoch": 0, "train_seconds": 0.0, "examples_seen": 0, "selected_epoch": 0, "best_value": None}
    like = {"state": state, "best_params": best_params} if select else {"state": state}
    restored = checkpointer.restore_latest(like, set_aside_damaged=True)
    if restored is not None:
        resume_epoch, tree, record = restored
        state = tree["state"]
        best_params = tree["best_params"] if select else None
        logging.info("resuming from the checkpoint of epoch %d in %s", resume_epoch, workdir)
    history = metrics_log.truncate_after(record["epoch"])

    train_step = make_train_step(task, optimizer, mesh, post_update)
    eval_step = make_eval_step(task, mesh)
    check_fits_in_memory("training step", train_step, state, jax.device_put(largest_batch(train_data), batch_sharding),
                         train_key)
    for batcher in eval_data.values():
        check_eval_fits_in_memory(eval_step, state.params, batcher, eval_key, batch_sharding)
    progress = _Progress(config.epochs, train_data.num_batches, config.log_every_seconds)
    try:
        for epoch in range(record["epoch"] + 1, config.epochs + 1):
            epoch_key = jax.random.fold_in(train_key, epoch)
            shuffle_key, step_key = jax.random.split(epoch_key)
            epoch_start = time.perf_counter()
            totals = None
            # Steps are dispatched asynchronously; the host only reads the metric sums once, below.
            for index, batch in enumerate(train_data.iterate(shuffle_key)):
                batch = jax.device_put(batch, batch_sharding)
                state, metrics = train_step(state, batch, jax.random.fold_in(step_key, index))
                totals = _add(totals, metrics)
                progress.step(epoch, index)
            train_metrics = means(totals)
            epoch_seconds = time.perf_counter() - epoch_start
            if not math.isfinite(train_metrics["objective"]):
                raise TrainingDiverged(
                    f"the training objective became {train_metrics['objective']} in epoch {epoch}; "
                    f"{_what_is_kept(checkpointer, like, workdir, epoch)}. Lower --learning_rate (or add gradient "
                    "clipping) and rerun with a fresh --workdir.")

            line = {"epoch": epoch, **{f"train/{k}": v for k, v in train_metrics.items()}}
            eval_start = time.perf_counter()
            for split, batcher in eval_data.items():
                split_metrics = evaluate(eval_step, state.params, batcher, eval_key, batch_sharding)
                line.update({f"{split}/{k}": v for k, v in split_metrics.items()})
            record["train_seconds"] += epoch_seconds
            record["examples_seen"] += train_metrics["count"]
            line.update(epoch_seconds=epoch_seconds, eval_seconds=time.perf_counter() - eval_start,
                        train_seconds=record["train_seconds"])

            if select:
                value = line[config.select_metric]
                best = record["best_value"]
                if best is None or (value > best if config.select_mode == "max" else value < best):
                    record.update(selected_epoch=epoch, best_value=value)
                    best_params = jax.tree.map(jnp.copy, state.params)
            else:
                record["selected_epoch"] = epoch
            record["epoch"] = epoch
            checkpointer.save(epoch, {"state": state, "best_params": best_params} if select
                              else {"state": state}, dict(record))
            metrics_log.append(line)
            history.append(line)
            logging.info("epoch %d/%d  %s", epoch, config.epochs, report.format_metrics(line))
            if on_epoch_end is not None:
                on_epoch_end(epoch, state.params)
    finally:
        checkpointer.wait()
        checkpointer.close()
    return FitResult(state=state, params=best_params if select else state.params, history=history,
                     selected_epoch=record["selected_epoch"], train_seconds=record["train_seconds"],
                     examples_seen=record["examples_seen"])
