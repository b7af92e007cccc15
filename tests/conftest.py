"""Shared fixtures: the real-data folder (skipped with a reason when absent)."""

import os

import pytest

from vaecnn.data import DATA_DIR_ENV


@pytest.fixture
def real_data_dir() -> str:
    """../shared/datasets (via VAECNN_DATA_DIR); tests that need it skip cleanly without it."""
    path = os.environ.get(DATA_DIR_ENV)
    if not path or not os.path.isdir(path):
        pytest.skip(f"real data not available: set {DATA_DIR_ENV} to the shared datasets folder "
                    "(e.g. ../shared/datasets); ./launch.sh test in CI does")
    return path
