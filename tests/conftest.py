"""Shared fixtures: the real-data folder (skipped with a reason when absent); and one JAX compilation cache
for each run of the suite.

Most of the suite's time on a CPU is XLA compiling the same tiny programs again: in each test process,
in each of the many experiment subprocesses of the fault and end-to-end tests. JAX's persistent cache
(keyed by the program, the jax and XLA versions, the flags and the device) lets every process after the
first load the executable instead. The programs run are the same, so every figure is the same.

The cache is a fresh folder per run, removed at its end: JAX writes an entry in place, and the fault
tests kill processes with SIGKILL, so a folder kept across runs could keep a half-written entry (which
every later process would warn about on stderr) and would grow without bound. JAX_COMPILATION_CACHE_DIR
set by the caller is used instead, and kept.
"""

import os
import shutil
import tempfile

# Set before jax is imported (by vaecnn below), and inherited by the xdist workers and the subprocesses the
# tests start; made by the process that starts first (the controller), which alone removes it.
_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE = os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="vaecnn-tests-jax-cache-")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

import pytest  # noqa: E402

from vaecnn.data import DATA_DIR_ENV  # noqa: E402


@pytest.fixture
def real_data_dir() -> str:
    """../shared/datasets (via VAECNN_DATA_DIR); tests that need it skip cleanly without it."""
    path = os.environ.get(DATA_DIR_ENV)
    if not path or not os.path.isdir(path):
        pytest.skip(f"real data not available: set {DATA_DIR_ENV} to the shared datasets folder "
                    "(e.g. ../shared/datasets); ./launch.sh test in CI does")
    return path


def pytest_unconfigure(config):
    if _OWN_CACHE is not None:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)
