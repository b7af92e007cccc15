"""One lifecycle for every model family: train a run, restore it, evaluate it again, and run many.

A model family is a `Recipe`: it builds its data, task and optimizer from its config, may add an epoch
hook (the VAE's pictures) and adds its own figures to the results. Everything else a run does lives
here, once, for every experiment and every mode:

    train_and_evaluate(recipe, config)   the resume check, the workdir lock, stopping on a signal,
                                         config.json, events, fit, the family's figures, results.json
    restore(recipe, workdir)             (config, built, parameters, epoch): parameters from the model
                                         alone, no optimizer or training data
    evaluate(recipe, workdir)            the run's figures again, from one of its checkpoints
    test_metrics(task, params, ...)      a recipe's test pass: the memory check, then the metrics with
                                         the run's evaluation key
    run(recipe, config, seeds=...)       the run, or its sub-runs (cross-validation folds, models), and
                                         with seeds one per seed: each in a folder of its own, resumable,
                                         their results combined; they nest (seed_k/fold_j)

The results.json of a run without sub-runs has the family's figures plus `epochs`, `selected_epoch`,
`train_seconds`, `train_examples_per_second`, `num_params`, `wall_seconds`, `config` and `hardware`; that of
a run over sub-runs or seeds has their results combined (the recipe's `combine`; with seeds, every seed's
figures and their mean ± std) plus `wall_seconds`, `config` and `hardware`.

Adding a family (docs/design.md, tests/test_lifecycle.py): a config dataclass with a `train: TrainConfig`
field, and a class with the methods of `Recipe` (`RecipeBase` supplies the optional ones).
"""

import dataclasses
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import jax
import numpy as np
import optax

from vaecnn import arith, evaluation, files, hardware, preemption, rng, sharding, train, workdir
from vaecnn import config as vconfig
from vaecnn.checkpoints import Checkpointer, leaves_by_path, path_parts
from vaecnn.engine import Batch, Params, Task, TrainingData
from vaecnn.errors import CheckpointError, ConfigError
from vaecnn.events import EventWriter, open_events
from vaecnn.memory import check_eval_fits_in_memory

C = TypeVar("C")
EpochHook = Callable[[int, Params], bool | None]
RESULTS_FILE = "results.json"


@dataclasses.dataclass(frozen=True)
class Built:
    """What a recipe builds for one run: for training (`training=True`) everything; for restoring, the
    task, an example batch and `family` (what its own `evaluate` needs), without training data."""
    task: Task
    example_batch: Batch                 # any batch of the data: the shapes the parameters are made for
    optimizer: optax.GradientTransformation | None = None
    train_data: TrainingData | None = None
    eval_data: Mapping[str, train.Batcher] = dataclasses.field(default_factory=dict)  # after every epoch
    family: Any = None                   # the family's own: splits, a text pipeline, a model summary


class Recipe(Protocol[C]):
    """A model family. `config_type` is a frozen dataclass with a `workdir` field and a `train: TrainConfig`."""
    config_type: type

    def build(self, config: C, mesh: jax.sharding.Mesh, *, training: bool) -> Built:
        """Data, task and optimizer (training) or task and example batch (restoring) of `config`."""
        ...

    def results(self, built: Built, config: C, fit: train.FitResult, mesh: jax.sharding.Mesh) -> dict[str, Any]:
        """The family's figures after training (from fit.history, and evaluations of fit.params)."""
        ...

    def evaluate(self, built: Built, config: C, params: Params, mesh: jax.sharding.Mesh) -> dict[str, Any]:
        """The family's figures of restored parameters (the same names as `results` where they exist)."""
        ...

    def subruns(self, config: C) -> dict[str, C]:
        """{} for a single run; else sub-runs by name (folds, models), each with its own workdir."""
        ...

    def combine(self, config: C, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        """The results of the sub-runs of `subruns(config)`, by name, as one."""
        ...

    def epoch_hook(self, built: Built, config: C, events: EventWriter | None) -> EpochHook | None:
        """Called after each epoch's checkpoint with (epoch, params); returning True stops training."""
        ...

    def write_reports(self, config: C, results: Mapping[str, Any]) -> None:
        """Files beside the combined results.json of a run with sub-runs (e.g. a comparison table)."""
        ...


class RecipeBase(Generic[C]):
    """The optional parts of a Recipe: a single run, no epoch hook."""

    def subruns(self, config: C) -> dict[str, C]:
        return {}

    def combine(self, config: C, results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        return summarize_runs(results)

    def epoch_hook(self, built: Built, config: C, events: EventWriter | None) -> EpochHook | None:
        return None

    def write_reports(self, config: C, results: Mapping[str, Any]) -> None:
        return None


def train_and_evaluate(recipe: Recipe[C], config: C, *, allow_changes: Sequence[str] = (),
                       on_epoch_end: EpochHook | None = None) -> dict[str, Any]:
    """Trains (or resumes) one run in config.workdir and writes its results.json; returns the results.

    A workdir holding a run started with another config stops with one line (vconfig.check_resume),
    except for the fields in `allow_changes`; another training run on the same workdir stops at once
    (vaecnn.workdir); SIGTERM and SIGINT stop it at the next chunk with its position saved
    (vaecnn.preemption). on_epoch_end(epoch, params) runs after the recipe's own epoch hook.
    """
    start = time.perf_counter()
    vconfig.check_resume(config, config.workdir, allow_changes)
    with workdir.locked(config.workdir), preemption.StopRequests():
        mesh = sharding.data_mesh()
        sharding.check_batch_size(config.train.batch_size, mesh)  # before the data loads: a bad flag fails at once
        files.make_workdir(config.workdir)
        vconfig.save(config, config.workdir, keep_existing=True)
        built = recipe.build(config, mesh, training=True)
        events = open_events(config.workdir, config)
        try:
            hook = _chain(recipe.epoch_hook(built, config, events), on_epoch_end)
            fit = train.fit(built.task, built.optimizer, built.train_data, built.eval_data, config.train,
                            config.workdir, mesh=mesh, on_epoch_end=hook, events=events)
        finally:
            events.close()
        results = {**recipe.results(built, config, fit, mesh),
                   "epochs": fit.history[-1]["epoch"], "selected_epoch": fit.selected_epoch,
                   "train_seconds": fit.train_seconds,
                   "train_examples_per_second": fit.examples_seen / fit.train_seconds,
                   "num_params": arith.count_params(fit.params), "wall_seconds": time.perf_counter() - start,
                   "config": vconfig.to_dict(config), "hardware": hardware.describe()}
        vconfig.save(config, config.workdir)
        files.write_json(os.path.join(config.workdir, RESULTS_FILE), results)
    return results


def _chain(*hooks: EpochHook | None) -> EpochHook | None:
    hooks = [hook for hook in hooks if hook is not None]
    if not hooks:
        return None
    return lambda epoch, params: any([bool(hook(epoch, params)) for hook in hooks])


@dataclasses.dataclass(frozen=True)
class Restored:
    config: Any
    built: Built
    params: Params
    epoch: int


def restore(recipe: Recipe[C], run_dir: str, *, epoch: int | None = None, overrides: Mapping[str, Any] | None = None,
            mesh: jax.sharding.Mesh | None = None) -> Restored:
    """The run in `run_dir` rebuilt from its config.json (with `overrides`, e.g. a data_dir), and the
    parameters it kept, from the newest intact checkpoint or that of `epoch`.

    The parameters it kept: the selected epoch's where the run selected one, else the epoch's own. The
    checkpoint is read as it was saved and verified against its digests, so neither the optimizer nor
    the training data are needed; the model's shapes come from `built.task.init_params`, traced only.
    """
    config = vconfig.override(vconfig.load(recipe.config_type, run_dir), overrides or {})
    mesh = sharding.data_mesh() if mesh is None else mesh
    built = recipe.build(config, mesh, training=False)
    like = jax.eval_shape(built.task.init_params, jax.random.key(0), built.example_batch)
    checkpointer = Checkpointer(os.path.join(run_dir, "checkpoints"))
    try:
        if epoch is None:
            restored = checkpointer.restore_latest(None, set_aside_damaged=False)
            if restored is None:
                raise CheckpointError(f"no checkpoint in {checkpointer.directory}: training has not finished an epoch")
            epoch, tree, _ = restored
        elif epoch in checkpointer.epochs():
            tree, _ = checkpointer.restore(epoch)
        else:
            raise ConfigError(f"{run_dir} has no checkpoint of epoch {epoch}; it has epochs "
                              f"{', '.join(map(str, checkpointer.epochs())) or 'none'} (--keep_checkpoint_every keeps more)")
    finally:
        checkpointer.close()
    kept = tree.get("best_params", tree["state"]["params"])
    return Restored(config, built, jax.device_put(_as_model(kept, like, run_dir), sharding.replicated(mesh)), epoch)


def _as_model(saved: Any, like: Any, run_dir: str) -> Params:
    """The saved parameters (nested dicts, as read) in the model's own tree, shapes checked."""
    saved_by_path = leaves_by_path(saved)
    like_paths = jax.tree_util.tree_leaves_with_path(like)
    wanted = [path_parts(jax.tree_util.keystr(path)) for path, _ in like_paths]
    if set(wanted) != set(saved_by_path) or any(saved_by_path[path].shape != leaf.shape
                                                for path, (_, leaf) in zip(wanted, like_paths)):
        raise CheckpointError(f"the checkpoint in {run_dir} belongs to another model than its config.json describes "
                              "(its arrays differ in name or shape); restore the config.json it was trained with")
    return jax.tree.unflatten(jax.tree.structure(like), [saved_by_path[path] for path in wanted])


def evaluate(recipe: Recipe[C], run_dir: str, *, epoch: int | None = None,
             overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The figures of the run in `run_dir` (a run with sub-runs: each one's, combined), computed again
    from its checkpoint (`epoch`: that epoch's, else the newest): the run's own numbers, with the
    run's keys. Stops at the next batch on SIGTERM or SIGINT where the evaluation is long (vaecnn.evaluation)."""
    config = vconfig.override(vconfig.load(recipe.config_type, run_dir), overrides or {})
    subruns = recipe.subruns(config)
    if subruns:
        return recipe.combine(config, {name: evaluate(recipe, sub.workdir, epoch=epoch, overrides=overrides)
                                       for name, sub in subruns.items()})
    with preemption.StopRequests():
        mesh = sharding.data_mesh()
        restored = restore(recipe, run_dir, epoch=epoch, overrides=overrides, mesh=mesh)
        return {**recipe.evaluate(restored.built, restored.config, restored.params, mesh), "epoch": restored.epoch}


def test_metrics(task: Task, params: Params, batcher: evaluation.Batcher, seed: int,
                 mesh: jax.sharding.Mesh) -> dict[str, float]:
    """The task's metrics (per-example means) over one pass of `batcher`, with the run's evaluation key:
    the same parameters always get the same numbers. A ConfigError first when its largest batch cannot fit
    in memory (evaluate mode and a text run's test split pass no memory check in the train loop)."""
    eval_step, key, batch_sharding = evaluation.make_eval_step(task, mesh), rng.stream(seed, "evaluation"), \
        sharding.batch_sharded(mesh)
    check_eval_fits_in_memory(eval_step, params, batcher, key, batch_sharding)
    return evaluation.evaluate(eval_step, params, batcher, key, batch_sharding)


def run(recipe: Recipe[C], config: C, *, seeds: Sequence[int] = (), allow_changes: Sequence[str] = (),
        on_epoch_end: EpochHook | None = None) -> dict[str, Any]:
    """The configured run; with sub-runs (recipe.subruns) each of them, and with `seeds` the whole of it
    once per seed in workdir/seed_<k>: every run resumable in its own folder, every level's results
    combined into its results.json (seeds: every seed's figures, their mean and std)."""
    if seeds:
        return run_seeds(lambda sub: run(recipe, sub, allow_changes=allow_changes, on_epoch_end=on_epoch_end),
                         config, seeds, allow_changes)
    subruns = recipe.subruns(config)
    if not subruns:
        return train_and_evaluate(recipe, config, allow_changes=allow_changes, on_epoch_end=on_epoch_end)
    return _over(subruns, config, lambda sub: run(recipe, sub, allow_changes=allow_changes,
                                                  on_epoch_end=on_epoch_end),
                 lambda results: recipe.combine(config, results), allow_changes, recipe.write_reports)


def run_seeds(run_one: Callable[[C], dict[str, Any]], config: C, seeds: Sequence[int],
              allow_changes: Sequence[str] = ()) -> dict[str, Any]:
    """run_one(config with seed k, in workdir/seed_<k>) for each k of `seeds`, then every seed's figures and
    their mean ± std in workdir/results.json (summarize_seeds). run_one holds its own folder."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs distinct seeds, got {list(seeds)}")
    per_seed = {f"seed_{seed}": vconfig.override(config, {"seed": seed,
                                                          "workdir": os.path.join(config.workdir, f"seed_{seed}")})
                for seed in seeds}
    return _over(per_seed, config, run_one, lambda results: summarize_seeds(seeds, results), allow_changes)


def _over(runs: Mapping[str, C], config: C, run_one: Callable[[C], dict[str, Any]],
          combine: Callable[[Mapping[str, dict[str, Any]]], dict[str, Any]], allow_changes: Sequence[str],
          write_reports: Callable[[C, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Each run of `runs` (a sub-folder of config.workdir each), then their results combined and written
    to config.workdir/results.json (and write_reports' files); the parent folder is held throughout."""
    start = time.perf_counter()
    vconfig.check_resume(config, config.workdir, allow_changes)
    with workdir.locked(config.workdir), preemption.StopRequests():
        vconfig.save(config, config.workdir, keep_existing=True)
        results = {name: run_one(sub) for name, sub in runs.items()}
        combined = {**combine(results), "wall_seconds": time.perf_counter() - start,
                    "config": vconfig.to_dict(config), "hardware": hardware.describe()}
        vconfig.save(config, config.workdir)
        files.write_json(os.path.join(config.workdir, RESULTS_FILE), combined)
        if write_reports is not None:
            write_reports(config, combined)
    return combined


def numbers(results: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a results dict, nested dicts (one per model) as 'model/name'."""
    found = {}
    for name, value in results.items():
        if isinstance(value, Mapping) and name not in ("config", "hardware"):
            found.update(numbers(value, f"{prefix}{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found[prefix + name] = float(value)
    return found


def summarize(per_run: Mapping[Any, Mapping[str, Any]]) -> dict[str, dict[str, float]]:
    """{"mean", "std"}: the mean and sample standard deviation (ddof = 1; 0 for one run) of every figure
    all runs have. The one aggregator of seeds, folds and any other set of runs."""
    found = [numbers(results) for results in per_run.values()]
    shared = [name for name in found[0] if all(name in other for other in found)]
    values = {name: np.array([n[name] for n in found]) for name in shared}
    return {"mean": {name: float(v.mean()) for name, v in values.items()},
            "std": {name: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for name, v in values.items()}}


def summarize_runs(results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Sub-runs' figures: each run's results by name, and their mean ± std."""
    return {"runs": dict(results), **summarize(results)}


def summarize_seeds(seeds: Sequence[int], results: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """{"seeds", "mean", "std", "per_seed": {k: results}}."""
    return {"seeds": list(seeds), **summarize(results),
            "per_seed": {str(seed): results[f"seed_{seed}"] for seed in seeds}}
