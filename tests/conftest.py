"""Shared fixtures: the read-only real data beside the checkout, tiny stores, seeded RNGs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

# The real labels live beside the checkout (../shared/data), never inside it.
SHARED_DATA = Path(
    os.environ.get("CROSSINGNETS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data, or skip: the real data is not part of the repo."""
    if not (SHARED_DATA / "README.md").is_file():
        pytest.skip(f"real data not found at {SHARED_DATA} (set CROSSINGNETS_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests run on 2 shared cores; more threads only add contention."""
    torch.set_num_threads(1)
    yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
