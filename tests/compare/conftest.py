"""Fixtures for the comparison tests; the run dirs themselves are built in compare_fixtures.py."""

from pathlib import Path

import pytest
from compare_fixtures import build_sweep


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory) -> Path:
    """The sweep of compare_fixtures.py, built once (composing the config is the slow part); tests must not modify it."""
    return build_sweep(tmp_path_factory.mktemp("multirun") / "12-00-00-000000")
