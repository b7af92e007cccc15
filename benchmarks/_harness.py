"""What every throughput benchmark shares: the project's real train step as a runner, and a fair
timing protocol.

Timing: each side first runs untimed warm-up steps (compilation included); then the sides alternate
`repeats` timed blocks of `steps` steps each (alternating, so load on a shared machine hits both
alike), and the median examples/s of each side is reported with the ratio of the first to the second.
"""

import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import optax
from absl import flags

from experiments import _flags
from vaecnn import engine, files, hardware, plots, sharding, train

Runner = Callable[[int], None]  # runs n training steps and returns once they are done

try:  # every benchmark imports PyTorch from here, so a missing install is one line, not a traceback
    import torch
except ImportError:
    sys.exit("error: the benchmarks compare against PyTorch, which is not installed here; run them as "
             "./launch.sh bench <name>, which installs torch==2.13.0 (the extra vaecnn[bench])")


def _jax_step(task: engine.Task, optimizer: optax.GradientTransformation, batch: Mapping[str, Any], seed: int):
    """(jitted step, initial state, batch on the devices, key) on the mesh of all local devices."""
    mesh = sharding.data_mesh()
    batch = jax.device_put(dict(batch), sharding.batch_sharded(mesh))
    key = jax.random.key(seed)
    state = train.init_state(task, optimizer, batch, key, mesh)
    return engine.make_train_step(task, optimizer, mesh), state, batch, key


def jax_runner(task: engine.Task, optimizer: optax.GradientTransformation, batch: Mapping[str, Any],
               seed: int = 0) -> Runner:
    """n steps of vaecnn.engine.make_train_step -- the step the engine scans in training -- on one fixed batch."""
    step, state, batch, key = _jax_step(task, optimizer, batch, seed)
    count = 0

    def run(n: int) -> None:
        nonlocal state, count
        for _ in range(n):
            state, metrics = step(state, batch, jax.random.fold_in(key, count))
            count += 1
        jax.block_until_ready((state, metrics))

    return run


def jax_step_flops(task: engine.Task, optimizer: optax.GradientTransformation, batch: Mapping[str, Any]) -> float:
    """XLA's FLOP count of one compiled train step on `batch` (its cost analysis)."""
    step, state, batch, key = _jax_step(task, optimizer, batch, seed=0)
    return float(step.lower(state, batch, key).compile().cost_analysis()["flops"])


def torch_runner(optimizer, loss: Callable[[], Any], after_backward: Callable[[], None] | None = None,
                 after_step: Callable[[], None] | None = None) -> Runner:
    """n PyTorch training steps: zero grads, loss().backward(), [after_backward, e.g. clipping],
    optimizer.step(), [after_step, e.g. a max-norm projection]."""

    def run(n: int) -> None:
        for _ in range(n):
            optimizer.zero_grad(set_to_none=True)
            loss().backward()
            if after_backward is not None:
                after_backward()
            optimizer.step()
            if after_step is not None:
                after_step()

    return run


def compare(sides: Mapping[str, Runner], batch_size: int, warmup_steps: int, steps: int,
            repeats: int) -> dict[str, Any]:
    """Median examples/s of each side under the protocol above, and first/second ratio."""
    load_before = os.getloadavg()[0]
    for run in sides.values():
        run(warmup_steps)
    rates = {name: [] for name in sides}
    for _ in range(repeats):
        for name, run in sides.items():
            start = time.perf_counter()
            run(steps)
            rates[name].append(steps * batch_size / (time.perf_counter() - start))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    first, second = list(sides)
    return {
        **{name: {"examples_per_second": medians[name], "repeats": rates[name]} for name in sides},
        f"ratio_{first}_over_{second}": medians[first] / medians[second],
        "timing": {"warmup_steps": warmup_steps, "steps_per_repeat": steps, "repeats": repeats,
                   "statistic": "median over repeats, sides alternating",
                   # Other processes on the machine skew both sides (PyTorch's threads most): quote it.
                   "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]}},
        "hardware": hardware.describe(),
    }


def define_flags(name: str, warmup_steps: int = 5, steps: int = 20, repeats: int = 7) -> None:
    """The flags every benchmark shares (absl; benchmarks are mains, so they may define flags)."""
    _flags.define_output(f"benchmarks/results/{name}.json", "Where the JSON goes (a PNG beside it).")
    flags.DEFINE_integer("warmup_steps", warmup_steps, "Untimed steps first (compilation included).", lower_bound=1)
    flags.DEFINE_integer("steps", steps, "Steps per timed block.", lower_bound=1)
    flags.DEFINE_integer("repeats", repeats, "Timed blocks per side.", lower_bound=1)
    # One thread is PyTorch's steadiest setting on 2 shared cores: with its default of 2 intra-op
    # threads, they wait on each other whenever another process holds a core (measured here: the RNN
    # step fell from 380-540 to 25-260 examples/s).
    flags.DEFINE_integer("torch_threads", 1, "torch.set_num_threads (0: PyTorch's default).", lower_bound=0)


def configure_torch() -> None:
    """PyTorch's best CPU settings: denormals flushed (without it, its kernels slow down several
    times on tiny gradients) and the thread count of --torch_threads."""
    torch.set_flush_denormal(True)
    if flags.FLAGS.torch_threads:
        torch.set_num_threads(flags.FLAGS.torch_threads)


def random_text_batch(batch_size: int, seq_len: int, vocab_size: int, num_classes: int,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Full-length random sentences with labels (the text models' batch layout)."""
    rng = np.random.default_rng(seed)
    return {"tokens": rng.integers(1, vocab_size, (batch_size, seq_len), dtype=np.int32),
            "length": np.full((batch_size,), seq_len, np.int32),
            "label": rng.integers(0, num_classes, (batch_size,), dtype=np.int32),
            "mask": np.ones((batch_size,), np.float32)}


def run_and_write(sides: Mapping[str, Runner], batch_size: int, description: str,
                  model: Mapping[str, Any],
                  annotate: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """compare() under the flags, then writes --output (JSON) and a PNG of the timed blocks.

    annotate: optional, entries computed from the timing results (e.g. the VAE's roofline) that the
    JSON records with them.
    """
    FLAGS = flags.FLAGS
    results = compare(sides, batch_size, FLAGS.warmup_steps, FLAGS.steps, FLAGS.repeats)
    results.update(benchmark=description, model=dict(model),
                   versions={"jax": jax.__version__, "torch": torch.__version__,
                             "torch_threads": torch.get_num_threads(), "flush_denormal": True})
    if annotate is not None:
        results.update(annotate(results))
    files.write_json(FLAGS.output, results)
    figure_path = FLAGS.output.removesuffix(".json") + ".png"
    _plot(figure_path, results)
    first, second = list(sides)
    print(f"{first} {results[first]['examples_per_second']:.0f} examples/s, {second} "
          f"{results[second]['examples_per_second']:.0f} examples/s, ratio "
          f"{results[f'ratio_{first}_over_{second}']:.2f}; written to {FLAGS.output} and {figure_path}")
    return results


def _plot(path: str, results: Mapping[str, Any]) -> None:
    """Each side's examples/s per timed block (dots) and median (bar)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sides = [name for name in results if isinstance(results[name], dict) and "examples_per_second" in results[name]]
    figure, axes = plt.subplots(figsize=(5, 3.5))
    for index, side in enumerate(sides):
        axes.scatter([index] * len(results[side]["repeats"]), results[side]["repeats"], color=f"C{index}", alpha=0.6)
        axes.bar(index, results[side]["examples_per_second"], color=f"C{index}", alpha=0.4, label=f"{side} median")
    axes.set_xticks(range(len(sides)), sides)
    axes.set_ylabel("training examples / s")
    axes.set_title(results["benchmark"].split(" (")[0], fontsize=9)
    figure.tight_layout()
    plots.save_figure(path, figure)
