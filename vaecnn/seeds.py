"""One configuration over several seeds: each seed a run of its own in workdir/seed_<k> (resumable like
any run), then every seed's figures and their mean ± std in workdir/results.json.

    results = run_over_seeds(vae.run, config, seeds=(0, 1, 2, 3, 4))
    results["mean"]["test_neg_elbo"], results["std"]["test_neg_elbo"]

Why: a single seed's figure moves with the initialisation, the data order and the CPU's arithmetic
(SST-2 CNN-rand, seed 0: 82.87 on an AVX-512 machine, 82.21 on an AVX2 one); a mean over seeds with its
spread is what compares with a paper.
"""

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from vaecnn import config as vconfig
from vaecnn import report
from vaecnn.errors import ConfigError


def _numbers(results: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a results dict, nested dicts (one per model) as 'model/name'."""
    found = {}
    for name, value in results.items():
        if isinstance(value, Mapping) and name not in ("config", "hardware"):
            found.update(_numbers(value, f"{prefix}{name}/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found[prefix + name] = float(value)
    return found


def summarize(per_seed: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof = 1; 0 for one seed) of every figure all seeds have."""
    numbers = [_numbers(results) for results in per_seed.values()]
    shared = [name for name in numbers[0] if all(name in other for other in numbers)]
    values = {name: np.array([n[name] for n in numbers]) for name in shared}
    return {"mean": {name: float(v.mean()) for name, v in values.items()},
            "std": {name: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for name, v in values.items()}}


def run_over_seeds(run: Callable[[Any], Mapping[str, Any]], config: Any, seeds: Sequence[int]) -> dict[str, Any]:
    """run(config with seed k, workdir/seed_<k>) for each k of `seeds`; writes and returns
    {"seeds", "per_seed": {k: results}, "mean", "std"} (workdir/results.json)."""
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds needs distinct seeds, got {list(seeds)}")
    report.make_workdir(config.workdir)
    vconfig.save(config, config.workdir, keep_existing=True)
    per_seed = {seed: run(vconfig.override(config, {"seed": seed,
                                                    "workdir": os.path.join(config.workdir, f"seed_{seed}")}))
                for seed in seeds}
    results = {"seeds": list(seeds), **summarize(per_seed), "per_seed": {str(k): v for k, v in per_seed.items()},
               "config": vconfig.to_dict(config), "hardware": report.hardware()}
    vconfig.save(config, config.workdir)
    report.write_json(os.path.join(config.workdir, "results.json"), results)
    return results
