"""The results registry: every results table of the documentation, rendered from committed JSON.

Committed results (paths relative to the repository root; one file or folder per preset of configs/):

    experiments/results/seeds/<preset>/seed_<k>.json  one run per seed (what --seeds writes in seed_<k>/),
                                                      beside the summary.json that --seeds writes
    experiments/results/runs/<preset>.json            one run's results.json (a cross-validated run holds
                                                      its folds)
    experiments/results/likelihood/<preset>.json      a likelihood run's results.json plus `curve`: a list
                                                      of {epoch, train_seconds, test_nll_iw, iw_samples}
                                                      (a run still training: its latest evaluation's
                                                      figures, and `in_progress`)
    experiments/results/likelihood_curves.png         those curves drawn, beside Burda et al.'s figures
    experiments/results/paper_figures.json            the papers' figures, each with its source
    benchmarks/results/<benchmark>.json               what `./launch.sh bench <benchmark>` writes

A page shows a table between `<!-- results:NAME -->` and `<!-- /results:NAME -->`; `write` fills every
such region of README.md and docs/*.md, and `check` names every region that differs from what the JSON
gives, every table no page shows, every result file no table reads and every absolute path in a result.
The tables themselves are declared once, in vaecnn/results_tables.py. Reading only files, this module
never imports jax, so the check runs in a second.
"""

import dataclasses
import glob
import hashlib
import io
import json
import os
import re
import statistics
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

RESULTS = "experiments/results"
PAPER_FIGURES = f"{RESULTS}/paper_figures.json"
CURVES_PICTURE = f"{RESULTS}/likelihood_curves.png"
CURVES_STAMP = "vaecnn-curves-sha256"  # the PNG text field holding the digest of the data it shows
CURVE_PAPER_FIGURES = ("burda_vae_k1", "burda_iwae_k5", "burda_iwae_k50")
DATA_DIR = "../shared/datasets"
NOT_RUN = "not run yet"
_REGION = re.compile(r"<!-- results:(?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- /results:(?P=name) -->", re.S)


# ---------------------------------------------------------------------------------------------------------
# Reading committed files


class Store:
    """The committed result files under a repository root, remembering which ones a table read."""

    def __init__(self, root: str):
        self.root = root
        self.read: set[str] = set()

    def exists(self, path: str) -> bool:
        return os.path.isfile(os.path.join(self.root, path))

    def json(self, path: str) -> dict[str, Any]:
        self.read.add(path)
        with open(os.path.join(self.root, path), encoding="utf-8") as f:
            return json.load(f)

    def text(self, path: str) -> str:
        self.read.add(path)
        with open(os.path.join(self.root, path), encoding="utf-8") as f:
            return f.read()

    def glob(self, pattern: str) -> list[str]:
        """Relative paths matching `pattern`, sorted."""
        return sorted(os.path.relpath(path, self.root)
                      for path in glob.glob(os.path.join(self.root, pattern), recursive=True))


def result_files(store: Store) -> list[str]:
    """Every committed result JSON: what some table must read."""
    return [path for pattern in (f"{RESULTS}/**/*.json", "benchmarks/results/*.json")
            for path in store.glob(pattern) if not path.endswith("/summary.json")]


def absolute_paths(value: Any, where: str = "") -> Iterator[str]:
    """'key.path: /abs/path' for every absolute path string in a JSON value: results must not carry the
    paths of the machine that made them."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from absolute_paths(item, f"{where}.{key}" if where else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from absolute_paths(item, f"{where}[{index}]")
    elif isinstance(value, str) and (value.startswith("/") or re.match(r"^[A-Za-z]:\\", value)):
        yield f"{where}: {value}"


@dataclasses.dataclass(frozen=True)
class Runs:
    """A preset's committed runs: one per seed, or one run (whose folds, if any, are its runs)."""
    files: tuple[str, ...]
    results: tuple[dict[str, Any], ...]

    @property
    def folds(self) -> list[dict[str, Any]] | None:
        return self.results[0].get("folds") if len(self.results) == 1 else None

    @property
    def kind(self) -> str:
        return "seeds" if len(self.results) > 1 else "folds" if self.folds else "run"


def find_runs(store: Store, preset: str) -> Runs | None:
    """A preset's runs, from the first layout that holds it: seeds, then one run, then a likelihood run."""
    seed_files = sorted(store.glob(f"{RESULTS}/seeds/{preset}/seed_*.json"),
                        key=lambda path: int(re.search(r"seed_(\d+)\.json$", path).group(1)))
    for files in (seed_files, [f"{RESULTS}/runs/{preset}.json"], [f"{RESULTS}/likelihood/{preset}.json"]):
        if files and all(store.exists(path) for path in files):
            return Runs(tuple(files), tuple(store.json(path) for path in files))
    return None


def lookup(result: Mapping[str, Any], field: str) -> Any:
    """result['a']['b'] for field 'a/b'; None when any part is missing."""
    for part in field.split("/"):
        if not isinstance(result, Mapping) or part not in result:
            return None
        result = result[part]
    return result


def run_values(runs: Runs, field: str) -> list[float]:
    """The field's value in each run: each seed's (a cross-validated seed gives its folds' mean), or each
    fold's of one cross-validated run; empty when the runs do not report it."""
    if runs.folds:
        values = [lookup(fold, field) for fold in runs.folds]
    else:
        values = [statistics.mean(lookup(fold, field) for fold in result["folds"]) if "folds" in result
                  else lookup(result, field) for result in runs.results]
    return [float(v) for v in values] if all(isinstance(v, (int, float)) for v in values) else []


# ---------------------------------------------------------------------------------------------------------
# Formatting


def number(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def mean_std(values: Sequence[float], digits: int) -> str:
    """'m ± s' (sample standard deviation) over two or more values, the value alone for one."""
    if len(values) == 1:
        return number(values[0], digits)
    return f"{number(statistics.mean(values), digits)} ± {number(statistics.stdev(values), digits)}"


def machine(hardware: Mapping[str, Any]) -> str:
    """Where a run ran, from results' `hardware`: the CPU model and cores, or the accelerators."""
    if hardware.get("backend", "cpu") == "cpu":
        name = re.sub(r"\((R|TM)\)| Processor| CPU", "", hardware.get("cpu_model", "unknown CPU"))
        return f"{name}, {hardware.get('host_cpus', '?')} cores"
    return f"{hardware.get('device_count', '?')} × {hardware.get('device_kind', '?')}"


def markdown_table(header: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table; `align` has one letter per column, l or r."""
    rule = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [header, rule, *rows]) + "\n"


def command(row: "Row", seeds: int) -> str:
    """The command that produces a row's results."""
    flags = f" --seeds={','.join(map(str, range(seeds)))}" if seeds else ""
    return f"`./launch.sh {row.experiment} --config={row.preset} --data_dir={DATA_DIR}{flags}`"


# ---------------------------------------------------------------------------------------------------------
# Tables of presets


@dataclasses.dataclass(frozen=True)
class Metric:
    """One figure of results.json: `field` ('a/b' reads a nested model's), shown × scale."""
    label: str
    field: str
    scale: float = 1.0
    digits: int = 2
    spread: bool = True      # mean ± std over the runs; False: the mean alone (e.g. a parameter count)


@dataclasses.dataclass(frozen=True)
class Row:
    """One preset's results: its headline figure, the paper's figure beside it (a key of
    paper_figures.json) and the seeds its command runs (0: a single run)."""
    preset: str
    experiment: str
    what: str
    headline: Metric
    paper: str | None = None
    seeds: int = 0
    model: str = ""          # a preset that trains several models: whose results (results.json's key)

    def field(self, name: str) -> str:
        return f"{self.model}/{name}" if self.model else name


def _paper_cell(papers: Mapping[str, Any], key: str | None, *, short: bool = False) -> str:
    """The paper's figure with its source (and, unless short, which of its figures)."""
    if key is None:
        return "—"
    figure = papers["figures"][key]
    source = papers["sources"][figure["source"]]["short"]
    return f"{figure['value']} ({source})" if short else f"{figure['value']} ({source}: {figure['what']})"


def _versus_paper(values: Sequence[float], paper: float) -> str:
    """Where the paper's figure lies against the runs' mean, in standard errors of the mean (std / √n);
    nothing for a single run, which has no standard error."""
    if len(values) < 2:
        return ""
    mean, error = statistics.mean(values), statistics.stdev(values) / len(values) ** 0.5
    if abs(paper - mean) <= error:  # also where the runs agree to the bit (error 0) with the paper
        return "; within 1 SE of the mean"
    if error == 0:
        return f"; {'above' if paper > mean else 'below'} the mean (the runs agree exactly: no spread)"
    return f"; {'above' if paper > mean else 'below'} the mean by {abs(paper - mean) / error:.1f} SE"


def _sources_note(papers: Mapping[str, Any], rows: Sequence[Row]) -> str:
    keys = sorted({papers["figures"][row.paper]["source"] for row in rows if row.paper})
    return "".join(f"\n{papers['sources'][key]['short']}: {papers['sources'][key]['citation']}.\n" for key in keys)


def _runs_cell(runs: Runs) -> str:
    count = len(runs.folds) if runs.kind == "folds" else len(runs.results)
    return f"{count} {runs.kind}" if count > 1 else "1 run"


def _time_cell(runs: Runs, row: Row) -> str:
    seconds = [lookup(result, row.field("train_seconds")) for result in runs.results]
    per = " per seed" if runs.kind == "seeds" else ""
    return f"{mean_std(seconds, 0)} s{per}" if all(isinstance(s, (int, float)) for s in seconds) else "—"


def _epochs_cell(runs: Runs, row: Row) -> str:
    # A run's own figure, else its config's (a cross-validation's results give only config/train/epochs).
    epochs = {lookup(result, row.field("epochs")) or lookup(result, row.field("config/epochs"))
              or lookup(result, row.field("config/train/epochs")) for result in runs.results}
    cell = ", ".join(str(e) for e in sorted(epochs, key=str))
    in_progress = lookup(runs.results[0], row.field("in_progress"))
    return f"{cell} of {in_progress['epochs_planned']} (still training)" if in_progress else cell


def _machine_cell(runs: Runs, row: Row) -> str:
    return "; ".join(sorted({machine(lookup(result, row.field("hardware")) or {}) for result in runs.results}))


def _scaled(runs: Runs, row: Row, metric: Metric) -> list[float]:
    """Every run's value of `metric`, in the unit the table shows (e.g. accuracy in %)."""
    return [v * metric.scale for v in run_values(runs, row.field(metric.field))]


def _metric_cell(runs: Runs, row: Row, metric: Metric) -> str:
    values = _scaled(runs, row, metric)
    if not values:
        return "—"
    return mean_std(values, metric.digits) if metric.spread else number(statistics.mean(values), metric.digits)


@dataclasses.dataclass(frozen=True)
class PresetTable:
    """One row per preset. Without `columns`, the at-a-glance form: each row's headline figure. With
    them: these figures as mean ± std, then every run's headline figure."""
    name: str
    rows: tuple[Row, ...]
    columns: tuple[Metric, ...] = ()

    def render(self, store: Store) -> str:
        papers = store.json(PAPER_FIGURES)
        figures = ["figure", "result"] if not self.columns else [m.label for m in self.columns] + ["per run", "runs"]
        header = ["preset", "what", *figures, "paper", "epochs", "training time", "machine"]
        align = "ll" + ("lr" if not self.columns else "r" * len(self.columns) + "ll") + "lrrl"
        return (markdown_table(header, align, [self._row(store, papers, row) for row in self.rows])
                + _sources_note(papers, self.rows))

    def _figures(self, runs: Runs, row: Row) -> list[str]:
        if not self.columns:
            return [f"{_metric_cell(runs, row, row.headline)} ({_runs_cell(runs)})"]
        per_run = [number(v, row.headline.digits) for v in _scaled(runs, row, row.headline)]
        return ([_metric_cell(runs, row, metric) for metric in self.columns]
                + [", ".join(per_run) or "—", _runs_cell(runs)])

    def _row(self, store: Store, papers: Mapping[str, Any], row: Row) -> list[str]:
        runs = find_runs(store, row.preset)
        lead = [f"`{row.preset}`" + (f" ({row.model})" if row.model else ""), row.what]
        if not self.columns:
            lead.append(row.headline.label)
        paper = _paper_cell(papers, row.paper, short=not self.columns)
        if runs is not None and row.paper and self.columns:
            paper += _versus_paper(_scaled(runs, row, row.headline), papers["figures"][row.paper]["value"])
        if runs is None:
            blanks = [""] * (len(self.columns) + 1 if self.columns else 0)
            return lead + [f"{NOT_RUN}: {command(row, row.seeds)}", *blanks, paper, "", "", ""]
        return lead + self._figures(runs, row) + [paper, _epochs_cell(runs, row), _time_cell(runs, row),
                                                  _machine_cell(runs, row)]


@dataclasses.dataclass(frozen=True)
class CurveTable:
    """Test −log p(x) along each likelihood run (its `curve`), one block of rows per preset."""
    name: str
    rows: tuple[Row, ...]

    def render(self, store: Store) -> str:
        body = []
        for row in self.rows:
            runs = find_runs(store, row.preset)
            curve = runs.results[0].get("curve") if runs else None
            if not curve:
                body.append([f"`{row.preset}`", f"{NOT_RUN}: {command(row, 0)}", "", "", ""])
                continue
            body += [[f"`{row.preset}`", str(point["epoch"]), number(point["train_seconds"], 0),
                      number(point["test_nll_iw"], 2), number(point["iw_samples"], 0)] for point in curve]
        return markdown_table(["preset", "epoch", "training seconds", "test −log p(x) (nats)", "k"], "lrrrr", body)


# ---------------------------------------------------------------------------------------------------------
# Tables of benchmarks and committed tables


@dataclasses.dataclass(frozen=True)
class ThroughputTable:
    """The jitted training step against PyTorch's, one row per benchmark JSON."""
    name: str
    files: tuple[str, ...]

    def render(self, store: Store) -> str:
        body = []
        for path in self.files:
            result = store.json(path)
            threads = result["versions"]["torch_threads"]
            body.append([result["benchmark"].split(" (")[0], f"`{path}`",
                         number(result["jax"]["examples_per_second"], 0),
                         f"{number(result['torch']['examples_per_second'], 0)} ({threads} thread"
                         f"{'s' if threads != 1 else ''})",
                         f"**{number(result['ratio_jax_over_torch'], 2)}**",
                         number(result["timing"]["load_average_1m"]["before"], 2), machine(result["hardware"])])
        return markdown_table(["step", "JSON", "JAX examples/s", "PyTorch examples/s", "JAX / PyTorch",
                               "load at start", "machine"], "llrrrrl", body)


@dataclasses.dataclass(frozen=True)
class LoopTable:
    """The engine's compiled chunks against the jitted step called once per step, and against a lean step
    of the same model where the benchmark has one (—: none), one row per preset."""
    name: str
    file: str

    def render(self, store: Store) -> str:
        result = store.json(self.file)
        lean = lambda p, key, digits, bold="": f"{bold}{number(p[key], digits)}{bold}" if key in p else "—"
        body = [[f"`{preset}`", str(p["groups"]), str(p["steps_per_block"]), number(p["loop_examples_per_second"], 0),
                 number(p["step_examples_per_second"], 0), lean(p, "lean_examples_per_second", 0),
                 f"**{number(p['ratio_loop_over_step'], 2)}**", lean(p, "ratio_loop_over_lean", 2, "**")]
                for preset, p in result["presets"].items()]
        table = markdown_table(["preset", "groups", "steps per block", "loop examples/s", "step examples/s",
                                "lean examples/s", "loop / step", "loop / lean"], "lrrrrrrr", body)
        return table + (f"\n{machine(result['hardware'])}, jax {result['versions']['jax']}, 1-minute load "
                        f"{number(result['timing']['load_average_1m']['before'], 2)} at the start "
                        f"(`{self.file}`).\n")


@dataclasses.dataclass(frozen=True)
class TimeToQualityTable:
    """Training seconds to a test −ELBO target, vaecnn's preset against a plain PyTorch script."""
    name: str
    file: str

    def render(self, store: Store) -> str:
        result = store.json(self.file)
        body = [[side, number(result[key]["seconds_to_target"], 1), str(result[key]["epochs_to_target"]),
                 number(result[key]["examples_per_second_median"], 0)]
                for side, key in (("vaecnn, preset `vae_mnist`", "jax"), ("PyTorch script", "torch"))]
        body.append(["**ratio**", f"**{number(result['ratio_jax_over_torch_seconds'], 2)}**", "", ""])
        table = markdown_table(["side", f"seconds to ≤ {number(result['target_nats'], 0)} nats", "epochs",
                                "examples/s (median)"], "lrrr", body)
        return table + (f"\n{machine(result['hardware'])}, jax {result['hardware']['jax']}, torch "
                        f"{result['versions']['torch']} ({result['versions']['torch_threads']} threads), "
                        f"1-minute load {number(result['load_average_1m']['before'], 2)} at the start "
                        f"(`{self.file}`).\n")


@dataclasses.dataclass(frozen=True)
class MainJobTable:
    """The main job's wall time against its training time, one row per run of the benchmark (the source
    tree's commit in each: before and after a change, measured in one run)."""
    name: str
    file: str

    def render(self, store: Store) -> str:
        result = store.json(self.file)
        body = [[str(index), f"`{run['commit']}`", number(run["epochs"], 0), number(run["test_neg_elbo"], 4),
                 number(run["train_seconds"], 1),
                 number(run["eval_seconds"], 1), number(run["outside_training_seconds"], 1),
                 number(run["wall_seconds"], 1), number(run["process_seconds"], 1),
                 f"**{number(run['ratio_wall_over_train'], 3)}**"]
                for index, run in enumerate(result["runs"], 1)]
        table = markdown_table(["run", "commit", "epochs", "test −ELBO", "training s", "evaluation s",
                                "outside training s", "wall s (results.json)", "process s", "wall / training"],
                               "rlrrrrrrrr", body)
        return table + (f"\n`{result['command']}`; {machine(result['hardware'])}, jax {result['hardware']['jax']}, "
                        f"1-minute load {number(result['load_average_1m']['before'], 2)} at the start "
                        f"(`{self.file}`).\n")


@dataclasses.dataclass(frozen=True)
class FileTable:
    """A table a run writes itself in markdown (e.g. gradient_variance.md), shown as committed."""
    name: str
    file: str

    def render(self, store: Store) -> str:
        return store.text(self.file).rstrip("\n") + f"\n\n(`{self.file}`)\n"


Table = PresetTable | CurveTable | ThroughputTable | LoopTable | TimeToQualityTable | MainJobTable | FileTable


# ---------------------------------------------------------------------------------------------------------
# Pages


def render_all(store: Store, tables: Sequence[Table]) -> dict[str, str]:
    """name -> the table's markdown, as the committed results give it."""
    return {table.name: table.render(store) for table in tables}


def regions(text: str) -> dict[str, str]:
    """name -> body of every results region of a page."""
    return {match["name"]: match["body"] for match in _REGION.finditer(text)}


def fill(text: str, rendered: Mapping[str, str]) -> str:
    """The page with every region whose table is known replaced by its rendering."""
    def body(match: re.Match) -> str:
        name = match["name"]
        new = rendered.get(name, match["body"])
        return f"<!-- results:{name} -->\n{new}<!-- /results:{name} -->"
    return _REGION.sub(body, text)


def pages(root: str) -> list[str]:
    """The pages that may hold results regions, relative to root."""
    return ["README.md"] + sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "docs", "*.md")))


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def describe_difference(page: str, name: str, shown: str, rendered: str) -> str:
    """One line naming the first figure in which a page's region differs from the committed results."""
    old, new = shown.splitlines(), rendered.splitlines()
    header = _cells(new[0]) if new and new[0].startswith("|") else []
    for line_old, line_new in zip(old, new):
        if line_old == line_new:
            continue
        a, b = _cells(line_old), _cells(line_new)
        if line_old.startswith("|") and line_new.startswith("|") and len(a) == len(b) == len(header):
            column = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
            return (f"{page}: table '{name}', row {b[0]}, column '{header[column]}': the page shows "
                    f"'{a[column]}', the committed results give '{b[column]}'")
        return f"{page}: table '{name}': the page shows '{line_old}', the committed results give '{line_new}'"
    what = "more" if len(new) > len(old) else "fewer"
    extra = (new if len(new) > len(old) else old)[min(len(old), len(new))]
    return f"{page}: table '{name}': the committed results give {what} lines than the page shows, from '{extra}'"


def check(root: str, tables: Sequence[Table]) -> list[str]:
    """Every way the documentation and the committed results disagree, one line each; [] when none."""
    store = Store(root)
    rendered = render_all(store, tables)
    problems, shown_anywhere = [], set()
    for page in pages(root):
        with open(os.path.join(root, page), encoding="utf-8") as f:
            for name, body in regions(f.read()).items():
                shown_anywhere.add(name)
                if name not in rendered:
                    problems.append(f"{page}: region '{name}' names no table of vaecnn/results_tables.py")
                elif body != rendered[name]:
                    problems.append(describe_difference(page, name, body, rendered[name]))
    problems += [f"table '{name}' is shown on no page (add <!-- results:{name} --> ... <!-- /results:{name} -->)"
                 for name in rendered if name not in shown_anywhere]
    for path in result_files(store):
        if path not in store.read and path != PAPER_FIGURES:
            problems.append(f"{path}: read by no table; add its preset to vaecnn/results_tables.py")
        problems += [f"{path}: absolute path in {where}; make it relative or null"
                     for where in absolute_paths(Store(root).json(path))]
    curves = _likelihood_curves(store)
    if curves and _picture_stamp(os.path.join(root, CURVES_PICTURE)) != _curves_digest(curves, store.json(PAPER_FIGURES)):
        problems.append(f"{CURVES_PICTURE} does not show the committed likelihood curves: run ./launch.sh results")
    return problems


def _likelihood_curves(store: Store) -> dict[str, dict[str, Any]]:
    """{preset: its results} of every committed likelihood run that has a curve."""
    runs = {os.path.basename(path).removesuffix(".json"): store.json(path)
            for path in store.glob(f"{RESULTS}/likelihood/*.json")}
    return {preset: results for preset, results in sorted(runs.items()) if results.get("curve")}


def _curves_digest(runs: Mapping[str, Mapping[str, Any]], papers: Mapping[str, Any]) -> str:
    """SHA-256 of what the curves' picture shows: stamped in the PNG, so a stale picture is found by reading
    the stamp, whatever the matplotlib version that drew it."""
    shown = {preset: [results["curve"], machine(results.get("hardware") or {}), results.get("in_progress")]
             for preset, results in runs.items()}
    shown["papers"] = [papers["figures"][key] for key in CURVE_PAPER_FIGURES]
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()


def _picture_stamp(path: str) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as picture:
            return picture.text.get(CURVES_STAMP)
    except (OSError, ValueError):
        return None


def _curves_y_range(runs: Mapping[str, Mapping[str, Any]], papers: Mapping[str, Any]) -> tuple[float, float]:
    """The picture's y range: every curve point and every paper's line, with a 5% margin. Matplotlib's
    autoscaling follows the curves only, so a paper's figure below them would fall off the picture."""
    shown = [point["test_nll_iw"] for results in runs.values() for point in results["curve"]] + \
        [papers["figures"][key]["value"] for key in CURVE_PAPER_FIGURES]
    margin = 0.05 * (max(shown) - min(shown) or 1.0)
    return min(shown) - margin, max(shown) + margin


def draw_likelihood_curves(root: str) -> str | None:
    """Draws CURVES_PICTURE where its data changed: test −log p(x) of every likelihood run's curve against
    its epochs and its training hours, with the papers' likelihood figures as dashed lines. Returns the
    picture's path when it was drawn, None when it was up to date or no run has a curve."""
    store = Store(root)
    runs, papers = _likelihood_curves(store), store.json(PAPER_FIGURES)
    path, digest = os.path.join(root, CURVES_PICTURE), _curves_digest(runs, papers)
    if not runs or _picture_stamp(path) == digest:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (by_epoch, by_time) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120, sharey=True)
    for preset, results in runs.items():
        curve = results["curve"]
        label = f"{preset} (k = {curve[-1]['iw_samples']:,})"
        if results.get("in_progress"):
            label += ", still training"
        by_epoch.plot([p["epoch"] for p in curve], [p["test_nll_iw"] for p in curve], marker="o", label=label)
        by_time.plot([p["train_seconds"] / 3600 for p in curve], [p["test_nll_iw"] for p in curve], marker="o")
    by_epoch.set_ylim(*_curves_y_range(runs, papers))
    for key in CURVE_PAPER_FIGURES:
        paper = papers["figures"][key]
        for axes in (by_epoch, by_time):
            axes.axhline(paper["value"], linestyle="--", linewidth=0.8, color="gray")
        source = papers["sources"][paper["source"]]["short"]
        by_epoch.annotate(f"{source}: {paper['what']}", (0, paper["value"]),
                          xycoords=("axes fraction", "data"), xytext=(4, 2), textcoords="offset points", fontsize=7)
    machines = sorted({machine(results.get("hardware") or {}) for results in runs.values()})
    by_epoch.set_xlabel("epoch")
    by_time.set_xlabel("training hours on\n" + "\n".join(machines), fontsize=8)
    by_epoch.set_ylabel("test −log p(x) (nats)")
    by_epoch.legend(fontsize=7, loc="upper right")
    for axes in (by_epoch, by_time):
        axes.grid(alpha=0.3)
        axes.set_xlim(left=0)
    figure.tight_layout()
    png = io.BytesIO()
    figure.savefig(png, format="png", metadata={CURVES_STAMP: digest})
    plt.close(figure)
    temporary = f"{path}.tmp-{os.getpid()}"  # written beside, then renamed: never half a picture
    with open(temporary, "wb") as f:
        f.write(png.getvalue())
    os.replace(temporary, path)
    return CURVES_PICTURE


def write(root: str, tables: Sequence[Table]) -> list[str]:
    """Fills every results region of every page from the committed results, and redraws the likelihood
    curves where their data changed; returns the files changed."""
    picture = draw_likelihood_curves(root)
    rendered, changed = render_all(Store(root), tables), [picture] if picture else []
    for page in pages(root):
        path = os.path.join(root, page)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        new = fill(text, rendered)
        if new != text:
            with open(path, "w", encoding="utf-8") as f:
                f.write(new)
            changed.append(page)
    return changed



# ---------------------------------------------------------------------------------------------------------
# Collecting a finished run into the layout


def _relative(value: Any, run_dir: str, preset: str) -> Any:
    """`value` with the run folder's absolute paths as runs/<preset>/..., and a datasets folder as DATA_DIR."""
    if isinstance(value, Mapping):
        return {key: _relative(item, run_dir, preset) for key, item in value.items()}
    if isinstance(value, list):
        return [_relative(item, run_dir, preset) for item in value]
    if isinstance(value, str) and os.path.isabs(value):
        if value == run_dir or value.startswith(run_dir + os.sep):
            return os.path.join("runs", preset, os.path.relpath(value, run_dir)).removesuffix(os.sep + ".")
        if value.rstrip(os.sep).endswith(os.path.join("shared", "datasets")):
            return DATA_DIR
    return value


def _iw_evaluations(run_dir: str) -> dict[int, dict[str, Any]]:
    """{epoch: its importance-weighted evaluation} (iw*_epoch_*.json, as `--mode=evaluate --output` writes)."""
    evaluations = {}
    for path in glob.glob(os.path.join(run_dir, "iw*_epoch_*.json")):
        with open(path, encoding="utf-8") as f:
            evaluation = json.load(f)
        evaluations[evaluation["epoch"]] = evaluation
    return evaluations


def _train_seconds_by_epoch(run_dir: str) -> dict[int, float]:
    seconds = {}
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                seconds[record["epoch"]] = record["train_seconds"]
    return seconds


def _likelihood_curve(run_dir: str) -> list[dict[str, Any]]:
    """The run's importance-weighted evaluations by epoch, each with the training seconds its epoch had
    taken (metrics.jsonl)."""
    seconds = _train_seconds_by_epoch(run_dir)
    return [{"epoch": epoch, "train_seconds": seconds.get(epoch), "test_nll_iw": evaluation["test_nll_iw"],
             "iw_samples": evaluation["iw_samples"], "test_neg_elbo": evaluation["test_neg_elbo"]}
            for epoch, evaluation in sorted(_iw_evaluations(run_dir).items())]


def _run_in_progress(run_dir: str) -> dict[str, Any]:
    """What a likelihood run still training can report: the figures of its latest importance-weighted
    evaluation (`epochs` is that evaluation's epoch), its config, and `in_progress`: the epochs trained
    so far (metrics.jsonl) and the epochs its config plans."""
    evaluations = _iw_evaluations(run_dir)
    if not evaluations:
        raise ValueError(f"{run_dir} holds neither a finished run (results.json) nor importance-weighted "
                         "evaluations of one in progress (iw*_epoch_*.json)")
    with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    epoch = max(evaluations)
    seconds = _train_seconds_by_epoch(run_dir)
    figures = {key: value for key, value in evaluations[epoch].items() if key.startswith("test_")}
    return {**figures, "epochs": epoch, "selected_epoch": epoch, "train_seconds": seconds.get(epoch),
            "hardware": evaluations[epoch].get("hardware", {}), "config": config,
            "in_progress": {"epochs_trained": max(seconds, default=epoch),
                            # A config.json of the older flat layout holds "epochs" at its top.
                            "epochs_planned": (config.get("train") or {}).get("epochs", config.get("epochs"))}}


def collect(root: str, run_dir: str, preset: str) -> list[str]:
    """Writes the run in `run_dir` into the committed layout under `root`, named after `preset`, with
    relative paths (returns the files written): a --seeds run as seeds/<preset>/seed_<k>.json and its
    summary.json; a run with importance-weighted evaluations (iw*_epoch_*.json) as likelihood/<preset>.json,
    its figures those of the last epoch's evaluation and `curve` every one of them; any other as
    runs/<preset>.json. A likelihood run still training (no results.json yet) is written with the figures
    of its latest evaluation and `in_progress` (see `_run_in_progress`); a run without either raises
    ValueError."""
    run_dir = os.path.abspath(run_dir)
    results_path = os.path.join(run_dir, "results.json")
    if os.path.exists(results_path):
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
    else:
        results = _run_in_progress(run_dir)
    outputs: dict[str, Any] = {}
    if "per_seed" in results:
        for seed, seed_results in results["per_seed"].items():
            outputs[f"{RESULTS}/seeds/{preset}/seed_{seed}.json"] = seed_results
        outputs[f"{RESULTS}/seeds/{preset}/summary.json"] = results
    else:
        curve = _likelihood_curve(run_dir)
        if curve:
            last = [point for point in curve if point["epoch"] == results["epochs"]]
            figures = {key: last[0][key] for key in ("test_nll_iw", "iw_samples")} if last else {}
            outputs[f"{RESULTS}/likelihood/{preset}.json"] = {**results, **figures, "curve": curve}
        else:
            outputs[f"{RESULTS}/runs/{preset}.json"] = results
    for path, value in outputs.items():
        os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
        with open(os.path.join(root, path), "w", encoding="utf-8") as f:
            json.dump(_relative(value, run_dir, preset), f, indent=2, sort_keys=True)
            f.write("\n")
    return sorted(outputs)
