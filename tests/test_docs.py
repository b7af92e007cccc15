"""The docs name only what exists: every function and test of docs/notes_to_code.md, every flag of the VAE
flag table in docs/usage.md (generated from VAEConfig's fields), and no preset docstring copies a figure."""

import glob
import importlib
import importlib.util
import os
import re

import pytest

from vaecnn import config as vconfig
from vaecnn.recipes.vae import VAEConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTES = os.path.join(ROOT, "docs", "notes_to_code.md")


def table_cells(path: str):
    """(code cell, proved-by cell) of every row of the page's four-column tables, in order."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if len(cells) == 4 and not set(cells[0]) <= set("-: ") and cells[1] != "code":
                yield cells[1], cells[2]


def names(cell: str) -> list[str]:
    """The code names quoted in a cell: `vaecnn.kl.kl_mvn`, `tests/x.py::A::test_b`, `test_c`, `f(...)`."""
    found = [re.sub(r"\(.*", "", token) for token in re.findall(r"`([^`]+)`", cell)]
    return [name for name in found if re.fullmatch(r"[\w./]+(::\w+)*", name)]


def is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # a parent that is a module, not a package
        return False


def resolve_code(name: str, modules: list[str]) -> list[str]:
    """Checks that `name` exists: a `vaecnn.` name by importing it, a bare name (`elbo`, `VAE.__call__`) in
    one of the modules named before it. Returns the modules named so far."""
    if name.startswith("vaecnn."):
        parts = name.split(".")
        cut = max(cut for cut in range(2, len(parts) + 1) if is_module(".".join(parts[:cut])))
        modules = [".".join(parts[:cut]), *modules]
        candidates, rest = [modules[0]], parts[cut:]
    else:
        candidates, rest = modules, name.split(".")

    def exists(module: str) -> bool:
        obj = importlib.import_module(module)
        for attribute in rest:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True

    assert any(exists(module) for module in candidates), f"docs/notes_to_code.md names {name}, which does not exist"
    return modules


def defined_in(path: str, name: str) -> bool:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return re.search(rf"^\s*(def|class) {name}\b", f.read(), re.M) is not None


def test_every_function_and_test_named_in_notes_to_code_exists():
    modules, test_file, checked = [], None, 0
    for code, proved in table_cells(NOTES):
        for name in names(code):
            modules = resolve_code(name, modules)
            checked += 1
        for name in names(proved):
            if name.startswith("tests/"):
                test_file, *parts = name.split("::")
                assert os.path.isfile(os.path.join(ROOT, test_file)), f"no test file {test_file}"
            else:
                parts = name.split("::")
            for part in parts:
                assert defined_in(test_file, part), f"docs/notes_to_code.md names {part}, not in {test_file}"
                checked += 1
    assert checked > 60  # the page's tables were read


def test_the_check_catches_a_name_that_points_at_nothing():
    assert not defined_in("tests/test_objectives.py", "test_elbo_equals_log_px_at_the_exact_posterior_with_full_covariance")
    with pytest.raises(AssertionError, match="vaecnn.kl.kl_gone"):
        resolve_code("vaecnn.kl.kl_gone", [])
    with pytest.raises(AssertionError, match="kl_gone"):
        resolve_code("kl_gone", ["vaecnn.kl"])
    assert names("`f(..., n=S)`, `tests/a.py::T::test_x`, `--flag=3`") == ["f", "tests/a.py::T::test_x"]


def format_default(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def flag_rows(config) -> list[str]:
    """The flag table of a config, one row per field: what docs/usage.md must hold."""
    return [f"| `--{s.name}` | `{format_default(s.default)}` | {s.metadata['help'].replace('|', chr(92) + '|')} |"
            for s in vconfig.settings(config).values()]


def test_the_vae_flag_table_is_generated_from_the_config_fields():
    with open(os.path.join(ROOT, "docs", "usage.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("<!-- flags:VAEConfig -->\n") + len("<!-- flags:VAEConfig -->\n")
    shown = text[start:text.index("<!-- /flags:VAEConfig -->")].splitlines()[2:]
    expected = flag_rows(VAEConfig())
    assert shown == expected, "docs/usage.md's VAE flag table should read:\n" + "\n".join(expected)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "configs", "*.py"))))
def test_preset_docstrings_name_their_results_row_instead_of_copying_a_figure(path):
    with open(path, encoding="utf-8") as f:
        docstring = f.read().split('"""')[1]
    assert not re.search(r"\d\.\d+ *(\+-|±)|\(\d+\.\d{2,}|\d nats", docstring), docstring
