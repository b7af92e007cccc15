"""What every throughput benchmark shares: the project's real train step as a runner, and a fair
timing protocol.

Timing: each side first runs untimed warm-up steps (compilation included); then the sides alternate
`repeats` timed blocks of `steps` steps each (alternating, so load on a shared machine hits both
alike), and the median examples/s of each side is reported with the ratio of the first to the second.
"""

import os
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import optax

from vaecnn import report, sharding, train

Runner = Callable[[int], None]  # runs n training steps and returns once they are done


def jax_runner(task: train.Task, optimizer: optax.GradientTransformation, batch: Mapping[str, Any],
               seed: int = 0) -> Runner:
    """n steps of vaecnn.train.make_train_step -- the step the experiments run -- on one fixed batch."""
    mesh = sharding.data_mesh()
    batch = jax.device_put(dict(batch), sharding.batch_sharded(mesh))
    key = jax.random.key(seed)
    state = train.init_state(task, optimizer, batch, key, mesh)
    step = train.make_train_step(task, optimizer, mesh)
    count = 0

    def run(n: int) -> None:
        nonlocal state, count
        for _ in range(n):
            state, metrics = step(state, batch, jax.random.fold_in(key, count))
            count += 1
        jax.block_until_ready((state, metrics))

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
        "hardware": report.hardware(),
    }
