"""The docs name only what exists: every function and test of docs/notes_to_code.md, every flag of the VAE
flag table in docs/usage.md (generated from VAEConfig's fields), and no preset docstring copies a figure."""

import glob
import importlib
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


def resolve_code(name: str, module: str | None) -> str:
    """The module a `vaecnn.` name lives in (its attributes must exist); a bare name resolves in the module
    named before it."""
    if name.startswith("vaecnn."):
        parts = name.split(".")
        for cut in range(len(parts), 1, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
            except ModuleNotFoundError:
                continue
            module, rest = ".".join(parts[:cut]), parts[cut:]
            break
    else:
        assert module, f"{name} is named before any module"
        obj, rest = importlib.import_module(module), name.split(".")
    for attribute in rest:
        assert hasattr(obj, attribute), f"docs/notes_to_code.md names {name}, which does not exist"
        obj = getattr(obj, attribute)
    return module


def defined_in(path: str, name: str) -> bool:
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return re.search(rf"^\s*(def|class) {name}\b", f.read(), re.M) is not None


def test_every_function_and_test_named_in_notes_to_code_exists():
    module, test_file, checked = None, None, 0
    for code, proved in table_cells(NOTES):
        for name in names(code):
            module = resolve_code(name, module)
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
        resolve_code("vaecnn.kl.kl_gone", None)
    assert names("`f(..., n=S)`, `tests/a.py::T::test_x`, `--flag=3`") == ["f", "tests/a.py::T::test_x"]


def format_default(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def flag_rows(config) -> list[str]:
    """The flag table of a config, one row per field: what docs/usage.md must hold."""
    return [f"| `--{s.name}` | `{format_default(s.default)}` | {s.metadata['help']} |"
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
