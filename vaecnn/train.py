"""The one training loop: jitted steps, epochs, evaluation, checkpoints, resume, metrics, NaN guard.

Every experiment (VAE, RNN, CNN) supplies a `Task` (how to initialise, what loss to minimise, what
to measure) and batchers; `fit` does the rest:

    per epoch: each group's shuffle and steps key drawn once (vaecnn.engine's orders program), then
               compiled chunks of steps (vaecnn.engine's chunk program: gather, keys, steps and metric
               sums in one jitted loop per group, called once per chunk), the sums read on the host once,
               evaluation on every eval split, a checkpoint, one line of metrics.jsonl, and the caller's
               `on_epoch_end` hook.

Randomness is a pure function of (seed, epoch, step): the shuffle and the step keys of epoch e are
derived with fold_in from the seed, so a run resumed from epoch e's checkpoint draws exactly the
numbers an uninterrupted run would have drawn, and ends with the same parameters.
"""

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from vaecnn import files, metrics_log, preemption, rng, sharding
from vaecnn.config import option
from vaecnn.checkpoints import STOPPED_DIR, Checkpointer
from vaecnn.evaluation import Batcher, evaluate, make_eval_step, means
from vaecnn.memory import check_eval_fits_in_memory, check_fits_in_memory, shapes_text
from vaecnn.engine import Batch, ChunkedEpochs, Metrics, Params, Task, TrainingData, TrainState
from vaecnn.events import EventWriter
from vaecnn.errors import ConfigError, TrainingDiverged


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How long and how to train: the `train` field of every experiment's config, whose flags stay flat
    (--epochs, not --train.epochs). Each experiment sets its own defaults, e.g. TrainConfig(epochs=30)."""
    epochs: int = option(10, "Training epochs.", lower_bound=1)
    batch_size: int = option(50, "Training batch size.", lower_bound=1)
    seed: int = option(0, "Seed of every random draw (initialisation, data order, sampling, folds).")
    eval_batch_size: int = option(1000, "Evaluation batch size.", lower_bound=1, resumable=True)
    # Model selection, saved with the run so that restoring it keeps the same parameters.
    select_metric: str | None = option(None, "Keep the parameters of the epoch with the best value of this "
                                       "evaluation metric, <split>/<metric> (e.g. dev/accuracy), when the run "
                                       "evaluates that split; otherwise (or unset) the last epoch's.")
    select_mode: str = option("max", "Whether --select_metric is best at its max or its min.", choices=("max", "min"))
    # Larger means fewer dispatches from Python; progress is logged between chunks. The step order does not
    # depend on it; the parameters agree to float rounding (tests/test_engine.py: within 1e-5 relative).
    steps_per_chunk: int = option(100, "Training steps per compiled program (more: fewer dispatches from Python; "
                                  "progress is logged between programs).", lower_bound=1, resumable=True)
    keep_checkpoints: int = option(2, "Newest epoch checkpoints kept.", lower_bound=1, resumable=True)
    keep_checkpoint_every: int = option(0, "Also keep every N-th epoch's checkpoint for good (0: only the newest), "
                                        "to evaluate along the run: --mode=evaluate --epoch=N.", lower_bound=0,
                                        resumable=True)
    log_every_seconds: float = option(30.0, "Seconds between progress lines inside an epoch.", lower_bound=0.0,
                                      resumable=True)

    def __post_init__(self):
        if self.epochs < 1:
            raise ConfigError(f"--epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1 or self.eval_batch_size < 1:
            raise ConfigError(f"--batch_size and --eval_batch_size must be >= 1, got {self.batch_size} and "
                              f"{self.eval_batch_size}")
        if self.select_mode not in ("max", "min"):
            raise ConfigError(f"--select_mode must be 'max' or 'min', got {self.select_mode!r}")
        if self.steps_per_chunk < 1 or self.keep_checkpoints < 1 or self.keep_checkpoint_every < 0:
            raise ConfigError(f"--steps_per_chunk and --keep_checkpoints must be >= 1 and --keep_checkpoint_every "
                              f">= 0, got {self.steps_per_chunk}, {self.keep_checkpoints}, {self.keep_checkpoint_every}")
        if self.select_metric is not None and "/" not in self.select_metric:
            raise ConfigError(f"--select_metric must be <split>/<metric>, e.g. dev/accuracy; got {self.select_metric!r}")

    def selects(self, eval_splits: Iterable[str]) -> str | None:
        """The metric that picks the kept epoch when evaluating `eval_splits`: None keeps the last epoch."""
        if self.select_metric is None or self.select_metric.split("/")[0] not in set(eval_splits):
            return None
        return self.select_metric


@dataclasses.dataclass
class FitResult:
    state: TrainState
    params: Params                   # the selected parameters (best epoch, or the last)
    history: list[dict[str, Any]]    # one record per epoch, as in metrics.jsonl
    selected_epoch: int
    train_seconds: float             # time in training steps (compilation included), over all runs
    examples_seen: int


def init_state(task: Task, optimizer: optax.GradientTransformation, batch: Batch, key: jax.Array,
               mesh: jax.sharding.Mesh) -> TrainState:
    """Initial parameters and optimizer state, replicated over the mesh."""

    def init(batch, key):
        params = task.init_params(key, batch)
        return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))

    return jax.jit(init, out_shardings=sharding.replicated(mesh))(batch, key)


class _Progress:
    """Logs steps/s and an ETA at most every `every_seconds`. Chunks are dispatched asynchronously, so
    before reporting it waits for the work dispatched so far: the rate is of finished steps. That wait
    happens once per report, not once per chunk."""

    def __init__(self, total_epochs: int, steps_per_epoch: int, every_seconds: float):
        self.total_epochs, self.steps_per_epoch, self.every = total_epochs, steps_per_epoch, every_seconds
        self.start = self.last = time.perf_counter()
        self.steps_done = 0

    def advance(self, epoch: int, steps_in_epoch: int, steps: int, wait: Callable[[], None]) -> None:
        self.steps_done += steps
        if time.perf_counter() - self.last < self.every:
            return
        wait()
        now = self.last = time.perf_counter()
        rate = self.steps_done / (now - self.start)
        remaining = (self.total_epochs - epoch + 1) * self.steps_per_epoch - steps_in_epoch
        logging.info("epoch %d/%d  step %d/%d  %.1f steps/s  ETA %s", epoch, self.total_epochs, steps_in_epoch,
                     self.steps_per_epoch, rate, _format_seconds(remaining / rate))


def _what_is_kept(checkpointer: Checkpointer, like: Any, workdir: str, failed_epoch: int) -> str:
    """What a diverged run leaves, stated only as far as it was just checked: the newest checkpoint is
    re-read and compared with its digests, and metrics.jsonl is read back."""
    lines = metrics_log.MetricsLog(os.path.join(workdir, "metrics.jsonl")).read()
    metrics = (f"metrics.jsonl ends at epoch {lines[-1]['epoch']}" if lines else "metrics.jsonl has no epoch")
    newest = checkpointer.latest_epoch()
    if newest is None:
        return f"no checkpoint was written in {workdir} before epoch {failed_epoch}; {metrics}"
    if checkpointer.verify(newest, like):
        return f"the checkpoint of epoch {newest} in {workdir} was re-read and matches its digests; {metrics}"
    return f"the newest checkpoint (epoch {newest}) in {workdir} did NOT read back intact; {metrics}"


def _write_events(events: EventWriter, line: Mapping[str, Any], chunk_sums: list[tuple[int, Metrics]],
                  steps_before: int) -> None:
    """The epoch's line (step = epoch) and, per chunk, the means over its own steps: the difference of
    consecutive running sums (step = global step at the chunk's end)."""
    events.scalars({name: value for name, value in line.items() if name != "epoch"}, line["epoch"])
    previous = None
    for steps_done, cumulative in chunk_sums:
        cumulative = jax.device_get(cumulative)
        interval = cumulative if previous is None else jax.tree.map(np.subtract, cumulative, previous)
        events.scalars(means(interval), steps_before + steps_done, prefix="train_steps/")
        previous = cumulative


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def fit(task: Task, optimizer: optax.GradientTransformation, train_data: TrainingData,
        eval_data: Mapping[str, Batcher], config: TrainConfig, workdir: str, *,
        mesh: jax.sharding.Mesh | None = None,
        on_epoch_end: Callable[[int, Params], bool | None] | None = None,
        events: EventWriter | None = None) -> FitResult:
    """Trains `task` for config.epochs epochs, resuming from the newest intact checkpoint in workdir.

    Writes workdir/metrics.jsonl (one line per epoch: 'train/<metric>' and '<split>/<metric>'
    means, seconds) and workdir/checkpoints/<epoch>. Stops with TrainingDiverged if the objective
    becomes NaN or infinite; the checkpoints and metrics of earlier epochs stay as they were. Asked to stop
    (vaecnn.preemption), it saves its position inside the epoch and raises Preempted; the next call
    continues from there. Each epoch's checkpoint is written in the background while the next epoch
    trains (vaecnn.checkpoints); the run returns once the last is written, and a failed write stops it
    with its own error. on_epoch_end(epoch, params) runs after each epoch's checkpoint is started; if it returns
    True, training stops there (e.g. a benchmark that has reached its target). With `events`, each
    epoch's line goes to TensorBoard too (step = epoch), and the training means of each compiled chunk
    (step = global step).
    """
    mesh = sharding.data_mesh() if mesh is None else mesh
    sharding.check_batch_size(config.batch_size, mesh)
    if train_data.batch_size > train_data.num_examples:  # the batchers fill a batch by repeating examples
        logging.warning("--batch_size=%d is larger than the training set (%d examples): each epoch is one batch "
                        "that repeats examples", train_data.batch_size, train_data.num_examples)
    files.make_workdir(workdir)
    run = _Training(task, optimizer, train_data, eval_data, config, workdir, mesh, events)
    try:
        run.resume()
        run.compile()
        for epoch in range(run.record["epoch"] + 1, config.epochs + 1):
            train_metrics, epoch_seconds = run.train_epoch(epoch)
            line = run.evaluate(epoch, train_metrics, epoch_seconds)
            run.select_and_save(epoch, line)
            if on_epoch_end is not None and on_epoch_end(epoch, run.state.params):
                break
    finally:
        run.close()
    return run.result()


@dataclasses.dataclass
class _Position:
    """Where an epoch stopped by a signal stands: its steps done, their metric sums, seconds and chunk sums."""
    epoch: int
    steps: int
    sums: Metrics
    seconds: float
    chunk_sums: list[tuple[int, Metrics]]


class _Training:
    """fit's state and its stages: resume, compile, train an epoch, evaluate it, select and save."""

    def __init__(self, task, optimizer, train_data, eval_data, config, workdir, mesh, events):
        self.config, self.workdir, self.eval_data, self.events = config, workdir, eval_data, events
        self.batch_sharding = sharding.batch_sharded(mesh)
        self.train_key, init_key = rng.stream(config.seed, "training"), rng.stream(config.seed, "init")
        self.split_key = rng.stream(config.seed, "evaluation")
        self.chunks = ChunkedEpochs(task, optimizer, train_data, mesh, config.steps_per_chunk)
        self.state = init_state(task, optimizer, jax.device_put(self.chunks.first_batch(), self.batch_sharding),
                                init_key, mesh)
        self.select_metric = config.selects(eval_data)
        self.select = self.select_metric is not None
        # Written in the background while the next epoch trains; closing the run waits for the last one.
        self.checkpointer = Checkpointer(os.path.join(workdir, "checkpoints"), max_to_keep=config.keep_checkpoints,
                                         keep_period=config.keep_checkpoint_every or None, asynchronous=True)
        # The position of an epoch stopped by a signal: one checkpoint, replaced by the epoch's own at its end.
        self.stopped = Checkpointer(os.path.join(workdir, STOPPED_DIR), max_to_keep=1)
        self.metrics_log = metrics_log.MetricsLog(os.path.join(workdir, "metrics.jsonl"))
        # The selected parameters are a copy: the chunks donate (free) the state's own buffers.
        self.best_params = jax.tree.map(jnp.copy, self.state.params) if self.select else None
        self.record = {"epoch": 0, "train_seconds": 0.0, "examples_seen": 0, "selected_epoch": 0, "best_value": None}
        self.eval_step = make_eval_step(task, mesh)
        self.position: _Position | None = None
        self.compile_seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self.chunk_sums: list[tuple[int, Metrics]] = []
        self.progress = _Progress(config.epochs, self.chunks.steps_per_epoch, config.log_every_seconds)

    def _tree(self, **extra) -> dict[str, Any]:
        return {"state": self.state, **({"best_params": self.best_params} if self.select else {}), **extra}

    def resume(self) -> None:
        """From the newest intact epoch checkpoint, then from the position saved inside the next epoch."""
        like = self._tree()
        restored = self.checkpointer.restore_latest(like, set_aside_damaged=True)
        if restored is not None:
            epoch, tree, self.record = restored
            self.state, self.best_params = tree["state"], tree.get("best_params")
            logging.info("resuming from the checkpoint of epoch %d in %s", epoch, self.workdir)
        self.history = self.metrics_log.truncate_after(self.record["epoch"])
        stopped = self.stopped.restore_latest(self._tree(sums=self.chunks.zero_sums(self.state)),
                                              set_aside_damaged=True)
        if stopped is None:
            return
        epoch, tree, record = stopped
        if epoch != self.record["epoch"] + 1:  # left by an epoch that has finished since
            self.stopped.delete(epoch)
            return
        self.state, self.best_params = tree["state"], tree.get("best_params")
        position = record["position"]
        self.position = _Position(epoch, position["steps"], tree["sums"], position["seconds"],
                                  [(steps, sums) for steps, sums in position["chunk_sums"]])
        logging.info("resuming epoch %d at step %d of %d, where a signal stopped it", epoch, self.position.steps,
                     self.chunks.steps_per_epoch)

    def compile(self) -> None:
        """The largest chunk program compiled ahead, its memory and the evaluation's checked; the seconds
        count as training time, like any first step's compilation. A finished run (a resumed
        cross-validation's done folds) compiles nothing."""
        if self.record["epoch"] >= self.config.epochs:
            return
        # Tracing and lowering are part of compiling the step (a jitted step's first call does all three).
        start = time.perf_counter()
        largest = self.chunks.largest_group()
        check_fits_in_memory(
            "training step", self.chunks.lower_chunk(self.state, self.chunks.zero_sums(self.state), self.train_key,
                                                     largest), shapes_text(self.chunks.batch_shape(largest)))
        self.compile_seconds = time.perf_counter() - start
        for batcher in self.eval_data.values():
            check_eval_fits_in_memory(self.eval_step, self.state.params, batcher, self.split_key, self.batch_sharding)

    def _chunks_from(self, epoch_key: jax.Array, done: int) -> Iterator[tuple[int, int, int]]:
        """The epoch's chunks after its first `done` steps (the step order does not depend on chunking)."""
        passed = 0
        for group, first, steps in self.chunks.epoch_chunks(epoch_key):
            skip = min(max(done - passed, 0), steps)
            passed += steps
            if skip < steps:
                yield group, first + skip, steps - skip

    def train_epoch(self, epoch: int) -> tuple[dict[str, float], float]:
        """The epoch's chunks, dispatched asynchronously, their sums read once: (train means, seconds)."""
        if preemption.requested():  # a signal between epochs (or folds): every epoch so far is saved
            raise preemption.Preempted(f"stopped before epoch {epoch} on {preemption.signal_name()}; rerun the same "
                                       "command to continue")
        start = time.perf_counter()
        epoch_key = rng.epoch_key(self.train_key, epoch)
        orders = self.chunks.epoch_orders(epoch_key)
        position = self.position or _Position(epoch, 0, self.chunks.zero_sums(self.state), 0.0, [])
        self.position = None
        sums, done, chunk_sums = position.sums, position.steps, position.chunk_sums
        for group, first_step, steps in self._chunks_from(epoch_key, done):
            self.state, sums = self.chunks.run_chunk(self.state, sums, orders, group, first_step, steps)
            done += steps
            if self.events is not None:  # a copy (the next chunk donates `sums`), read with them below: no wait
                chunk_sums.append((done, jax.tree.map(jnp.copy, sums)))
            self.progress.advance(epoch, done, steps, lambda: jax.block_until_ready(sums))
            if done < self.chunks.steps_per_epoch and preemption.requested():
                seconds = position.seconds + time.perf_counter() - start + self.compile_seconds
                self._save_position(_Position(epoch, done, sums, seconds, chunk_sums))
        train_metrics = means(sums)
        epoch_seconds = time.perf_counter() - start + self.compile_seconds + position.seconds
        if not math.isfinite(train_metrics["objective"]):
            raise TrainingDiverged(
                f"the training objective became {train_metrics['objective']} in epoch {epoch}; "
                f"{_what_is_kept(self.checkpointer, self._tree(), self.workdir, epoch)}. Lower --learning_rate (or "
                "add gradient clipping) and rerun with a fresh --workdir.")
        self.chunk_sums = chunk_sums
        return train_metrics, epoch_seconds

    def _save_position(self, position: _Position) -> None:
        """The epoch's position as a checkpoint of its own, then Preempted (its one line)."""
        host_chunk_sums = [(steps, {name: float(value) for name, value in jax.device_get(sums).items()})
                           for steps, sums in position.chunk_sums]
        record = {**self.record, "position": {"steps": position.steps, "seconds": position.seconds,
                                              "chunk_sums": host_chunk_sums}}
        self.stopped.save(position.epoch, self._tree(sums=position.sums), record)
        raise preemption.Preempted(
            f"stopped at epoch {position.epoch}, step {position.steps} of {self.chunks.steps_per_epoch} on "
            f"{preemption.signal_name()}; its position is saved in {self.workdir}: rerun the same command to continue")

    def evaluate(self, epoch: int, train_metrics: dict[str, float], epoch_seconds: float) -> dict[str, Any]:
        """The epoch's metrics line: training means, every eval split's, seconds."""
        line = {"epoch": epoch, **{f"train/{k}": v for k, v in train_metrics.items()}}
        eval_start = time.perf_counter()
        for split, batcher in self.eval_data.items():
            split_metrics = evaluate(self.eval_step, self.state.params, batcher, self.split_key, self.batch_sharding)
            line.update({f"{split}/{k}": v for k, v in split_metrics.items()})
        self.record["train_seconds"] += epoch_seconds
        self.record["examples_seen"] += train_metrics["count"]
        line.update(epoch_seconds=epoch_seconds, compile_seconds=self.compile_seconds,
                    eval_seconds=time.perf_counter() - eval_start, train_seconds=self.record["train_seconds"])
        self.compile_seconds = 0.0  # only the first epoch of a process compiles
        return line

    def select_and_save(self, epoch: int, line: dict[str, Any]) -> None:
        """Model selection, then the metrics line, events and the epoch's checkpoint.

        The metrics line first, then the checkpoint: a run killed between the two resumes from the previous
        checkpoint and rewrites this epoch's line (truncate_after), while the other order would leave a
        checkpoint whose line is never written.
        """
        if self.select:
            value, best = line[self.select_metric], self.record["best_value"]
            if best is None or (value > best if self.config.select_mode == "max" else value < best):
                self.record.update(selected_epoch=epoch, best_value=value)
                self.best_params = jax.tree.map(jnp.copy, self.state.params)
        else:
            self.record["selected_epoch"] = epoch
        self.record["epoch"] = epoch
        self.metrics_log.append(line)
        self.history.append(line)
        if self.events is not None:
            _write_events(self.events, line, self.chunk_sums, (epoch - 1) * self.chunks.steps_per_epoch)
            self.events.flush()
        self.checkpointer.save(epoch, self._tree(), dict(self.record))
        self.stopped.delete(epoch)
        logging.info("epoch %d/%d  %s", epoch, self.config.epochs, metrics_log.format_metrics(line))

    def close(self) -> None:
        for checkpointer in (self.checkpointer, self.stopped):
            checkpointer.close()

    def result(self) -> FitResult:
        return FitResult(state=self.state, params=self.best_params if self.select else self.state.params,
                         history=self.history, selected_epoch=self.record["selected_epoch"],
                         train_seconds=self.record["train_seconds"], examples_seen=self.record["examples_seen"])
