"""Fixtures for the comparison tests; the run dirs themselves are built in compare_fixtures.py."""

from pathlib import Path

import pytest
from compare_fixtures import build_seed_sweep, build_sweep


@pytest.fixture(scope="session")
def sweep_dir(tmp_path_factory) -> Path:
    """The sweep of compare_fixtures.py, built once (composing the config is the slow part); tests must not modify it."""
    return build_sweep(tmp_path_factory.mktemp("multirun") / "12-00-00-000000")


@pytest.fixture(scope="session")
def seed_sweep_dir(tmp_path_factory) -> Path:
    """The seeded sweep of compare_fixtures.py (3 configurations x 3 seeds); tests must not modify it."""
    return build_seed_sweep(tmp_path_factory.mktemp("multirun") / "13-00-00-000000")
