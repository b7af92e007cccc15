"""What an experiment's main does with its config: train it (over seeds, allowing changes), or work from a
trained --workdir (--mode=evaluate, --epoch, --output)."""

import sys
from collections.abc import Mapping, Sequence
from typing import Any

from absl import flags

from vaecnn import config as vconfig
from vaecnn import files, hardware, lifecycle

FLAGS = flags.FLAGS


def define_mode(modes: Sequence[str]) -> None:
    """--mode: what to do with --workdir. The first mode (train) trains or resumes from the flags; the
    others work from what a trained workdir holds (its config.json), whatever the other flags say."""
    flags.DEFINE_enum("mode", modes[0], modes, f"{modes[0]}: train (or resume) the configured run; "
                      f"{', '.join(modes[1:])}: work from the trained --workdir, rebuilt from its config.json.",
                      module_name=sys.argv[0])


def train(recipe: lifecycle.Recipe, config: Any) -> Mapping[str, Any] | None:
    """lifecycle.run with --seeds and --allow_changes; with --seeds prints every figure's mean ± std and
    returns None."""
    results = lifecycle.run(recipe, config, seeds=FLAGS.seeds, allow_changes=FLAGS.allow_changes)
    return results if not FLAGS.seeds else print_seeds(results, config.workdir)


def print_seeds(results: Mapping[str, Any], workdir: str) -> None:
    for name, mean in results["mean"].items():
        if not any(part in name for part in ("seconds", "count", "num_", "epoch", "size")):
            print(f"{name}: {mean:.4f} ± {results['std'][name]:.4f} over seeds {', '.join(map(str, FLAGS.seeds))}")
    print(f"every seed's figures in {workdir}/results.json")


def given_settings(config_type: type, names: Sequence[str] | None = None) -> dict[str, Any]:
    """The flags given on the command line among the resumable fields of `config_type` (paths, evaluation
    settings) and `names`: what a mode that works from a trained workdir may change in its config.json."""
    settings = vconfig.settings(config_type())
    allowed = [name for name, setting in settings.items() if setting.metadata.get("resumable")] + list(names or ())
    return {name: FLAGS[name].value for name in allowed if name != "workdir" and FLAGS[name].present}


def define_epoch() -> None:
    flags.DEFINE_integer("epoch", None, "--mode=evaluate: the checkpoint of this epoch (kept with "
                         "--keep_checkpoint_every), instead of the newest.", lower_bound=1, module_name=sys.argv[0])


def write_output(results: Mapping[str, Any]) -> None:
    """results to --output, when given."""
    if FLAGS.output:
        files.write_json(FLAGS.output, {**results, "hardware": hardware.describe()})
        print(f"results in {FLAGS.output}")
