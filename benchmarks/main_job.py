r"""The main job's wall time against its training time: `python -m experiments.vae_mnist`, as a user runs it.

    ./launch.sh bench main_job --data_dir=../shared/datasets
        (writes benchmarks/results/main_job.json)
    ./launch.sh bench main_job --data_dir=../shared/datasets --trees=/tmp/before,.
        (before and after a change in one run: /tmp/before a worktree of the earlier commit)

The command runs in a child process with a fresh workdir, --repeats times one after the other, from each
source tree of --trees in turn (the trees alternate, so a change of load touches both sides). Its
figures are read from what the run writes: `train_seconds` (time in training programs, compilation
included), the evaluations' seconds (metrics.jsonl), `wall_seconds` (results.json: from the lifecycle's
start to results.json), and the child process's own wall time (imports and start-up included). Everything
a run does besides training (start-up, evaluation, pictures, checkpoints, logs, closing) is
`wall_seconds - train_seconds`.
"""

import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from absl import flags

from experiments import _cli, _flags
from vaecnn import files, hardware, metrics_log
from vaecnn.errors import UserError

FLAGS = flags.FLAGS
_flags.define_output("benchmarks/results/main_job.json", "Where the JSON goes.")
flags.DEFINE_string("data_dir", None, "Folder holding mnist/ (default: $VAECNN_DATA_DIR).")
flags.DEFINE_integer("repeats", 1, "Runs of the main job, one after the other.", lower_bound=1)
flags.DEFINE_list("extra_flags", [], "Flags added to the main job's command (e.g. --epochs=5 for a quick look).")
flags.DEFINE_list("trees", ["."], "Source trees (checkouts of the project) whose main job runs, in turn.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def commit_of(tree: str) -> str:
    """The tree's commit, with -dirty when it has uncommitted changes."""
    described = subprocess.run(["git", "-C", tree, "describe", "--always", "--dirty", "--abbrev=7"],
                               capture_output=True, text=True)
    return described.stdout.strip() if described.returncode == 0 else os.path.abspath(tree)


def one_run(command: list[str], tree: str) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        completed = subprocess.run(command + [f"--workdir={workdir}"], cwd=tree, capture_output=True, text=True)
        process_seconds = time.perf_counter() - start
        if completed.returncode != 0:
            raise SystemExit(f"error: the main job failed (exit status {completed.returncode}):\n"
                             f"{completed.stderr[-2000:]}")
        results = files.read_json(os.path.join(workdir, "results.json"))
        lines = metrics_log.MetricsLog(os.path.join(workdir, "metrics.jsonl")).read()
    return {"commit": commit_of(tree), "test_neg_elbo": results["test_neg_elbo"], "epochs": results["epochs"],
            "train_seconds": results["train_seconds"], "eval_seconds": sum(line["eval_seconds"] for line in lines),
            "compile_seconds": lines[0]["compile_seconds"], "wall_seconds": results["wall_seconds"],
            "process_seconds": process_seconds,
            "outside_training_seconds": results["wall_seconds"] - results["train_seconds"],
            "ratio_wall_over_train": results["wall_seconds"] / results["train_seconds"]}


def main(argv):
    del argv
    command = [sys.executable, "-m", "experiments.vae_mnist", *FLAGS.extra_flags]
    if FLAGS.data_dir:
        command.append(f"--data_dir={os.path.abspath(FLAGS.data_dir)}")  # the runs' folder is their tree
    load_before = os.getloadavg()[0]
    trees = [os.path.join(ROOT, tree) if not os.path.isabs(tree) else tree for tree in FLAGS.trees]
    for tree in trees:
        if not os.path.isfile(os.path.join(tree, "experiments", "vae_mnist.py")):
            raise UserError(f"--trees: {tree} is not a checkout of the project (no experiments/vae_mnist.py)")
    runs = []
    for index in range(FLAGS.repeats * len(trees)):
        run = one_run(command, trees[index % len(trees)])
        runs.append(run)
        print(f"run {index + 1} ({run['commit']}): wall {run['wall_seconds']:.1f} s for {run['train_seconds']:.1f} s "
              f"of training ({run['ratio_wall_over_train']:.3f}x), test -ELBO {run['test_neg_elbo']}", flush=True)
    results = {"benchmark": "the main job, python -m experiments.vae_mnist: wall time against training time",
               "command": " ".join(["python", "-m", "experiments.vae_mnist", *FLAGS.extra_flags]),
               "runs": runs,
               "median": {commit: {key: float(np.median([one[key] for one in runs if one["commit"] == commit]))
                                   for key in runs[0] if key != "commit"}
                          for commit in dict.fromkeys(one["commit"] for one in runs)},
               "load_average_1m": {"before": load_before, "after": os.getloadavg()[0]},
               "hardware": hardware.describe()}
    files.write_json(FLAGS.output, results)
    print(f"written to {FLAGS.output}")


if __name__ == "__main__":
    _cli.run(main)
