"""The results registry: every table of the docs equals what the committed JSON gives, and the check fails,
naming the table and the figure, as soon as a committed result changes, appears or goes."""

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from vaecnn import results_registry as registry
from vaecnn.results_tables import TABLES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SST2_SEED_2 = "experiments/results/seeds/kim_cnn_sst2/seed_2.json"


@pytest.fixture
def copy(tmp_path):
    """A scratch copy of the pages and the committed results."""
    for folder in ("docs", "experiments/results", "benchmarks/results"):
        shutil.copytree(os.path.join(ROOT, folder), tmp_path / folder)
    shutil.copy(os.path.join(ROOT, "README.md"), tmp_path / "README.md")
    return tmp_path


def edit_json(path, change):
    with open(path) as f:
        data = json.load(f)
    change(data)
    with open(path, "w") as f:
        json.dump(data, f)


def test_every_table_of_the_repository_matches_the_committed_results():
    assert registry.check(ROOT, TABLES) == []


def test_no_cell_of_a_rendered_table_is_left_empty_as_none():
    for page in ["README.md", *sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))]:
        text = open(os.path.join(ROOT, page)).read()
        assert "| None |" not in text, page


def test_an_altered_figure_fails_the_check_naming_table_row_and_column(copy):
    edit_json(copy / SST2_SEED_2, lambda d: d.update(test_accuracy=0.9))
    problems = registry.check(str(copy), TABLES)
    text = "\n".join(problems)
    assert "docs/results.md: table 'text', row `kim_cnn_sst2`, column 'test accuracy (%)'" in text
    assert "README.md: table 'glance', row `kim_cnn_sst2`, column 'result'" in text
    assert "'82.17 ± 0.61'" in text  # what the page shows; the new mean is another figure
    registry.write(str(copy), TABLES)
    assert registry.check(str(copy), TABLES) == []


def test_a_result_that_lands_in_the_layout_is_rendered_without_other_edits(copy):
    curve = [{"epoch": 50, "train_seconds": 600.0, "test_nll_iw": 88.12, "iw_samples": 5000}]
    os.makedirs(copy / "experiments/results/likelihood", exist_ok=True)
    with open(copy / "experiments/results/likelihood/vae_mnist_burda.json", "w") as f:
        json.dump({"epochs": 500, "test_neg_elbo": 91.5, "test_nll_iw": 87.25, "train_seconds": 6000.0,
                   "hardware": {"backend": "gpu", "device_count": 1, "device_kind": "NVIDIA H200"},
                   "curve": curve}, f)
    problems = registry.check(str(copy), TABLES)
    assert any("row `vae_mnist_burda`" in p and "'87.25 (1 run)'" in p for p in problems), problems
    registry.write(str(copy), TABLES)
    readme = (copy / "README.md").read_text()
    assert "| 87.25 (1 run) | 86.76 (Burda et al. 2015, Table 1) | 500 | 6,000 s | 1 × NVIDIA H200 |" in readme
    assert "| `vae_mnist_burda` | 50 | 600 | 88.12 | 5,000 |" in (copy / "docs/results.md").read_text()
    picture = copy / registry.CURVES_PICTURE  # the curve drawn beside the papers' figures
    assert picture.read_bytes().startswith(b"\x89PNG") and not registry.check(str(copy), TABLES)
    assert registry.draw_likelihood_curves(str(copy)) is None  # up to date: not drawn again
    edit_json(copy / "experiments/results/likelihood/vae_mnist_burda.json",
              lambda d: d["curve"][0].update(test_nll_iw=88.5))
    assert any(p.startswith(registry.CURVES_PICTURE) for p in registry.check(str(copy), TABLES))  # stale
    shutil.rmtree(copy / "experiments/results/likelihood")
    assert registry.draw_likelihood_curves(str(copy)) is None  # no curve: nothing drawn


def test_a_removed_result_an_unread_file_and_an_absolute_path_are_each_named(copy):
    os.remove(copy / "experiments/results/runs/kim_cnn_mr_glove.json")
    shutil.copy(copy / SST2_SEED_2, copy / "experiments/results/runs/nobody.json")
    edit_json(copy / "experiments/results/seeds/vae_mnist/seed_0.json",
              lambda d: d["config"].update(workdir="/home/someone/runs/vae"))
    text = "\n".join(registry.check(str(copy), TABLES))
    assert "row `kim_cnn_mr_glove`" in text and "not run yet" in text
    assert "experiments/results/runs/nobody.json: read by no table" in text
    assert "seed_0.json: absolute path in config.workdir: /home/someone/runs/vae" in text


def test_a_page_without_a_table_or_with_an_unknown_region_fails(copy):
    readme = (copy / "README.md").read_text()
    start, end = readme.index("<!-- results:glance -->"), readme.index("<!-- /results:glance -->")
    (copy / "README.md").write_text(readme[:start] + "<!-- results:nothing -->\n<!-- /results:nothing -->"
                                    + readme[end + len("<!-- /results:glance -->"):])
    text = "\n".join(registry.check(str(copy), TABLES))
    assert "README.md: region 'nothing' names no table" in text
    assert "table 'glance' is shown on no page" in text


def test_mean_std_uses_the_sample_deviation_and_a_single_value_stands_alone():
    assert registry.mean_std([1.0, 2.0, 3.0], 2) == "2.00 ± 1.00"
    assert registry.mean_std([1234.5], 0) == "1,234"  # round half to even, as format() does


@pytest.mark.slow  # a subprocess
def test_the_command_exits_one_with_the_message_on_a_stale_page(copy):
    shutil.copytree(os.path.join(ROOT, "experiments"), copy / "experiments", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("results"))
    edit_json(copy / SST2_SEED_2, lambda d: d.update(test_accuracy=0.9))
    env = {**os.environ, "PYTHONPATH": ROOT}
    completed = subprocess.run([sys.executable, "-m", "experiments._results", "--check"], cwd=copy, env=env,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1
    assert "table 'text', row `kim_cnn_sst2`" in completed.stderr


def _write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value) if not isinstance(value, str) else value)


def test_collect_writes_a_likelihood_run_with_its_curve_and_a_seeds_run_with_relative_paths(tmp_path):
    run = tmp_path / "somewhere" / "vae_long"
    config = {"workdir": str(run), "data_dir": "/work/shared/datasets", "train": {"epochs": 4}}
    _write(run / "results.json", {"epochs": 4, "test_neg_elbo": 90.0, "config": config})
    _write(run / "metrics.jsonl", "".join(json.dumps({"epoch": e, "train_seconds": 10.0 * e}) + "\n" for e in (1, 2, 3, 4)))
    for epoch, nll in ((2, 88.5), (4, 87.25)):
        _write(run / f"iw5000_epoch_{epoch:03d}.json", {"epoch": epoch, "test_nll_iw": nll, "iw_samples": 5000,
                                                        "test_neg_elbo": nll + 3})
    assert registry.collect(str(tmp_path), str(run), "vae_long") == ["experiments/results/likelihood/vae_long.json"]
    written = json.load(open(tmp_path / "experiments/results/likelihood/vae_long.json"))
    assert (written["test_nll_iw"], written["iw_samples"]) == (87.25, 5000)  # the last epoch's estimate
    assert [(p["epoch"], p["train_seconds"], p["test_nll_iw"]) for p in written["curve"]] == [(2, 20.0, 88.5),
                                                                                            (4, 40.0, 87.25)]
    assert written["config"]["workdir"] == "runs/vae_long" and written["config"]["data_dir"] == "../shared/datasets"
    assert not list(registry.absolute_paths(written))

    seeds = tmp_path / "seeds_run"
    per_seed = {str(k): {"test_accuracy": 0.9 + k / 100, "config": {"workdir": str(seeds / f"seed_{k}")}}
                for k in (0, 1)}
    _write(seeds / "results.json", {"seeds": [0, 1], "per_seed": per_seed, "config": {"workdir": str(seeds)}})
    assert registry.collect(str(tmp_path), str(seeds), "cnn") == [
        f"experiments/results/seeds/cnn/{name}.json" for name in ("seed_0", "seed_1", "summary")]
    assert json.load(open(tmp_path / "experiments/results/seeds/cnn/seed_1.json"))["config"]["workdir"] == \
        "runs/cnn/seed_1"


def test_a_likelihood_run_still_training_is_collected_at_its_latest_evaluation_and_shown_as_such(copy):
    run = copy / "runs_elsewhere" / "vae_mnist_iwae5"
    _write(run / "config.json", {"workdir": str(run), "train": {"epochs": 200}})
    _write(run / "metrics.jsonl", "".join(json.dumps({"epoch": e, "train_seconds": 60.0 * e}) + "\n"
                                          for e in range(1, 113)))
    for epoch, nll in ((25, 86.0), (100, 85.0), (50, 85.5)):
        _write(run / f"iw5000_epoch_{epoch:03d}.json", {
            "epoch": epoch, "test_nll_iw": nll, "iw_samples": 5000, "test_neg_elbo": nll + 8, "test_recon": 70.0,
            "test_kl": nll - 62, "test_neg_iwae": nll + 2, "hardware": {"backend": "cpu", "cpu_model": "Some CPU"}})
    os.remove(copy / "experiments/results/likelihood/vae_mnist_iwae5.json")
    assert registry.collect(str(copy), str(run), "vae_mnist_iwae5") == [
        "experiments/results/likelihood/vae_mnist_iwae5.json"]
    written = json.load(open(copy / "experiments/results/likelihood/vae_mnist_iwae5.json"))
    assert (written["epochs"], written["test_nll_iw"], written["test_neg_elbo"], written["train_seconds"]) == (
        100, 85.0, 93.0, 6000.0)  # the latest evaluation's figures, not the last trained epoch's
    assert written["in_progress"] == {"epochs_trained": 112, "epochs_planned": 200}
    assert [p["epoch"] for p in written["curve"]] == [25, 50, 100]
    rendered = registry.render_all(registry.Store(str(copy)), TABLES)
    row = next(line for line in rendered["vae"].splitlines() if line.startswith("| `vae_mnist_iwae5`"))
    assert "| 85.00 |" in row and "| 100 of 200 (still training) |" in row

    empty = copy / "runs_elsewhere" / "nothing_yet"
    _write(empty / "metrics.jsonl", "")
    with pytest.raises(ValueError, match="neither a finished run"):
        registry.collect(str(copy), str(empty), "vae_mnist_iwae5")


def test_the_paper_s_figure_is_placed_in_standard_errors_of_the_mean():
    values = [80.0, 82.0, 84.0]  # mean 82, std 2, standard error 2 / √3 ≈ 1.155
    assert registry._versus_paper(values, 82.9) == "; within 1 SE of the mean"
    assert registry._versus_paper(values, 84.31) == "; above the mean by 2.0 SE"
    assert registry._versus_paper(values, 79.69) == "; below the mean by 2.0 SE"
    assert registry._versus_paper([80.0], 90.0) == ""  # one run has no standard error


def test_the_curves_picture_shows_every_paper_line_even_below_every_curve():
    papers = {"figures": {key: {"value": 80.0 + index} for index, key in enumerate(registry.CURVE_PAPER_FIGURES)}}
    runs = {"a": {"curve": [{"test_nll_iw": 90.0}, {"test_nll_iw": 86.0}]}, "b": {"curve": [{"test_nll_iw": 88.0}]}}
    low, high = registry._curves_y_range(runs, papers)
    assert low < 80.0 and high > 90.0  # the lowest paper line and the highest curve point, each inside
    assert (low, high) == pytest.approx((80.0 - 0.5, 90.0 + 0.5))  # a 5% margin of the 10-nat span
