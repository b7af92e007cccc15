r"""Every experiment's real training loop against its jitted step, on the same batches of its real data.

    ./launch.sh bench loop_throughput --data_dir=../shared/datasets
    (writes benchmarks/results/loop_throughput.json; `./launch.sh results` renders its table in
    docs/performance.md)

For each preset the data, model, task and optimizer are built exactly as its experiment builds them (the
VAE on MNIST; the Elman RNN and the Kim CNN on MR's fold 0 and on SST-2; the small CNN and the dense net
on MNIST). Then, on one epoch's plan (vaecnn.engine.ChunkedEpochs.epoch_chunks: the steps' order, their
batches and keys), the sides train the same steps per timed block, the preset's count in STEPS times
`--steps_scale`:

  loop   the engine's compiled chunks, as vaecnn.train.fit dispatches them;
  step   vaecnn.engine.make_train_step called once per step on the same (batch, key) pairs
         (ChunkedEpochs.step_inputs), the batches gathered on the device beforehand;
  lean   (the VAE, the Elman RNN and the Kim CNN) the same model's step written plainly
         (benchmarks/_lean.py): the loss alone, no metric sums, gradient norm or masks, with the preset's
         optimizer, in one fori_loop per group over the same batches stacked beforehand. The VAE's is a
         plain Flax model of the same layers; the classifiers' use the project's model.

All sides first run the whole plan once untimed (every group's program compiled), then alternate
`--repeats` timed blocks; the medians give examples/s and the ratios loop / step and loop / lean. No
PyTorch here.
"""

import atexit
import dataclasses
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from absl import flags

from configs import kim_cnn_mr, kim_cnn_sst2, mnist_cnn_vs_dense, rnn_mr, rnn_sst2, vae_mnist
from benchmarks import _lean
from experiments import _cli, _flags
from vaecnn import engine, files, hardware, sharding, train
from vaecnn.data.batching import ArrayBatcher
from vaecnn.recipes import image_classifier, text_classifier, vae

FLAGS = flags.FLAGS
PRESETS = ("vae_mnist", "rnn_mr", "rnn_sst2", "kim_cnn_mr", "kim_cnn_sst2", "mnist_cnn", "mnist_dense")
# Steps per timed block: about 2-10 s of training each on a 2-core CPU.
STEPS = {"vae_mnist": 200, "rnn_mr": 100, "rnn_sst2": 60, "kim_cnn_mr": 100, "kim_cnn_sst2": 100,
         "mnist_cnn": 30, "mnist_dense": 200}
_flags.define_output("benchmarks/results/loop_throughput.json", "Where the JSON goes.")
flags.DEFINE_list("presets", list(PRESETS), f"Which presets: any of {', '.join(PRESETS)}.")
flags.DEFINE_string("data_dir", os.environ.get("VAECNN_DATA_DIR"), "Folder holding mnist/, mr/ and sst2/.")
flags.DEFINE_float("steps_scale", 1.0, "Multiplies each preset's steps per timed block.", lower_bound=0.01)
flags.DEFINE_integer("repeats", 3, "Timed blocks per side.", lower_bound=1)
flags.register_validator("presets", lambda names: set(names) <= set(PRESETS),
                         f"--presets takes names among {', '.join(PRESETS)}")

Setup = tuple[engine.Task, Any, engine.TrainingData]


def _vae(mesh) -> Setup:
    config = dataclasses.replace(vae_mnist.get_config(), data_dir=FLAGS.data_dir)
    splits = vae.load_splits(config)
    data = ArrayBatcher.on_mesh({"image": splits["train"].images}, config.train.batch_size, mesh)
    return (vae.make_task(config, splits["train"].images.shape[1:]), vae.make_vae_optimizer(config, data.num_batches),
            data)


def _text(preset) -> Callable[[Any], Setup]:
    def setup(mesh) -> Setup:
        # Building writes the run's text pipeline into its workdir: a scratch one, removed at exit.
        workdir = tempfile.mkdtemp(prefix="loop_throughput_")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        config = dataclasses.replace(preset.get_config(), data_dir=FLAGS.data_dir, workdir=workdir)
        # Cross-validated (MR): fold 0, with its dev share held out, as the experiment trains it.
        config = next(iter(text_classifier.RECIPE.subruns(config).values()), config)
        built = text_classifier.RECIPE.build(config, mesh, training=True)
        return built.task, built.optimizer, built.train_data

    return setup


def _image(model: str) -> Callable[[Any], Setup]:
    def setup(mesh) -> Setup:
        config = dataclasses.replace(mnist_cnn_vs_dense.get_config(), model=model, data_dir=FLAGS.data_dir)
        built = image_classifier.RECIPE.build(config, mesh, training=True)
        return built.task, built.optimizer, built.train_data

    return setup


def _lean_vae(task, params, key):
    del params  # the lean VAE is its own plain Flax model, initialised here
    model = task.model
    return _lean.lean_vae(model.encoder.hidden_sizes, model.encoder.latent_dim, 28 * 28, key)


def _lean_classifier(task, params, key):
    del key
    return params, _lean.lean_classifier(task.model, task.input_fields)


# preset -> (task, params of the project's initialisation, key) -> (lean params, lean loss_fn)
LEAN = {"vae_mnist": _lean_vae, "rnn_mr": _lean_classifier, "rnn_sst2": _lean_classifier,
        "kim_cnn_mr": _lean_classifier, "kim_cnn_sst2": _lean_classifier}

SETUPS = {"vae_mnist": _vae, "rnn_mr": _text(rnn_mr), "rnn_sst2": _text(rnn_sst2), "kim_cnn_mr": _text(kim_cnn_mr),
          "kim_cnn_sst2": _text(kim_cnn_sst2), "mnist_cnn": _image("cnn"), "mnist_dense": _image("dense")}


def measure(name: str, steps: int, repeats: int) -> dict[str, Any]:
    mesh = sharding.data_mesh()
    task, optimizer, data = SETUPS[name](mesh)
    chunks = engine.ChunkedEpochs(task, optimizer, data, mesh, train.TrainConfig.steps_per_chunk)
    key = jax.random.key(0)
    epoch_key = jax.random.fold_in(key, 1)
    plan, total = [], 0  # the epoch's first `steps` steps, as chunks
    for group, first, count in chunks.epoch_chunks(epoch_key):
        count = min(count, steps - total)
        if count <= 0:
            break
        plan.append((group, first, count))
        total += count
    orders = chunks.epoch_orders(epoch_key)
    groups = [group for group, first, count in plan for _ in range(count)]
    inputs = [chunks.step_inputs(orders, group, index) for group, first, count in plan
              for index in range(first, first + count)]
    step = engine.make_train_step(task, optimizer, mesh)
    batch_sharding = sharding.batch_sharded(mesh)
    inputs = [(jax.device_put(batch, batch_sharding), step_key) for batch, step_key in inputs]
    states = {side: train.init_state(task, optimizer, chunks.first_batch(), key, mesh) for side in ("loop", "step")}
    sums = chunks.zero_sums(states["loop"])

    def loop_side():
        nonlocal sums
        for group, first, count in plan:
            states["loop"], sums = chunks.run_chunk(states["loop"], sums, orders, group, first, count)
        jax.block_until_ready((states["loop"], sums))

    def step_side():
        for batch, step_key in inputs:
            states["step"], metrics = step(states["step"], batch, step_key)
        jax.block_until_ready((states["step"], metrics))

    sides = {"loop": loop_side, "step": step_side}
    if name in LEAN:
        lean_params, loss_fn = LEAN[name](task, states["step"].params, key)
        program = _lean.lean_program(loss_fn, optimizer)
        lean_state = [jax.tree.map(jnp.copy, lean_params), optimizer.init(lean_params)]
        stacked = {group: jax.tree.map(lambda *fields: jnp.stack(fields),
                                       *[{k: v for k, v in batch.items() if k != "mask"}
                                         for (batch, _), g in zip(inputs, groups) if g == group])
                   for group in dict.fromkeys(groups)}

        def lean_side():
            for group_batches in stacked.values():
                lean_state[0], lean_state[1], loss_sum = program(*lean_state, group_batches, key)
            jax.block_until_ready((lean_state, loss_sum))

        sides["lean"] = lean_side
    for run in sides.values():  # untimed, twice: compiles every group's program, also for the placement of
        run()                   # the programs' own outputs, which the initial state (on the mesh) does not share
        run()
    seconds = {side: [] for side in sides}
    for _ in range(repeats):
        for side, run in sides.items():
            start = time.perf_counter()
            run()
            seconds[side].append(time.perf_counter() - start)
    rates = {side: total * data.batch_size / statistics.median(values) for side, values in seconds.items()}
    return {"steps_per_block": total, "batch_size": data.batch_size, "groups": len(chunks.groups),
            **{f"{side}_examples_per_second": rate for side, rate in rates.items()},
            "ratio_loop_over_step": rates["loop"] / rates["step"],
            **({"ratio_loop_over_lean": rates["loop"] / rates["lean"]} if "lean" in rates else {}),
            "seconds": seconds}


def main(argv):
    del argv
    load_before = os.getloadavg()[0]
    results = {"benchmark": "each experiment's training loop (engine chunks) against its jitted step, same batches",
               "presets": {}}
    for name in FLAGS.presets:
        row = measure(name, max(1, round(STEPS[name] * FLAGS.steps_scale)), FLAGS.repeats)
        results["presets"][name] = row
        print(f"{name}: loop {row['loop_examples_per_second']:.0f} examples/s, step "
              f"{row['step_examples_per_second']:.0f}, loop / step {row['ratio_loop_over_step']:.2f}"
              + (f", lean {row['lean_examples_per_second']:.0f}, loop / lean {row['ratio_loop_over_lean']:.2f}"
                 if "lean_examples_per_second" in row else ""), flush=True)
    results.update(timing={"repeats": FLAGS.repeats, "statistic": "median over blocks, sides alternating",
                           "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]}},
                   versions={"jax": jax.__version__}, hardware=hardware.describe())
    files.write_json(FLAGS.output, results)
    print(f"written to {FLAGS.output}; ./launch.sh results renders its table in docs/performance.md")


if __name__ == "__main__":
    _cli.run(main)
