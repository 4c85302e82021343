"""What the fuzz tests (`tests/test_fuzz_*.py`) share: their hypothesis settings, the mutations of
real-format files, and the contract every reader keeps on any input.

The contract: a reader returns a valid result or raises the project's clear error, a ValueError
(`BadFrameError`, `DepthImageError`, `UvdTextError`, `NoHandError` all are) whose message names
the file; never another exception type, never a hang (each example runs under a deadline, each
test under a timeout), never unbounded memory (the peak of the allocations Python and numpy make
stays under a bound).

CI runs `FUZZ_EXAMPLES` examples per test, derandomised so a run is repeatable;
`CROSSINGNETS_FUZZ_EXAMPLES=N` runs N per test with fresh random inputs (`benchmarks/fuzz.py`).
"""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

EXAMPLES_ENV = "CROSSINGNETS_FUZZ_EXAMPLES"
FUZZ_EXAMPLES = 20  # per test in CI: the whole fuzz suite stays within a few seconds a file
EXAMPLE_DEADLINE_S = 10.0  # one input of a few kB is read in milliseconds; 10 s means a hang
MAX_PEAK_MB = 256.0  # a frame at the upload limit, 2048 px a side, peaks at ~130 MB while decoded

T = TypeVar("T")


def examples(scale: float = 1.0) -> int:
    """Examples per test: FUZZ_EXAMPLES, or $CROSSINGNETS_FUZZ_EXAMPLES, times `scale` (slow targets)."""
    return max(1, round(int(os.environ.get(EXAMPLES_ENV, FUZZ_EXAMPLES)) * scale))


def fuzz_settings(scale: float = 1.0) -> settings:
    """Hypothesis settings of a fuzz test: `examples(scale)` inputs, no example database (nothing
    written into the checkout). CI's run is derandomised and has no per-example deadline (a stall
    of the shared machine must not fail it; the test's timeout still bounds a hang); a long run
    draws fresh inputs and holds each to EXAMPLE_DEADLINE_S."""
    long_run = EXAMPLES_ENV in os.environ
    return settings(
        max_examples=examples(scale),
        deadline=timedelta(seconds=EXAMPLE_DEADLINE_S) if long_run else None,
        database=None,
        derandomize=not long_run,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def timeout(scale: float = 1.0) -> pytest.MarkDecorator:
    """The test's hang bound: every example at its deadline would still finish."""
    return pytest.mark.timeout(60 + examples(scale) * EXAMPLE_DEADLINE_S)


def clear_outcome(
    call: Callable[[], T], names: str | tuple[str, ...], max_mb: float = MAX_PEAK_MB
) -> T | ValueError:
    """Run `call`: its result, or the ValueError it raised, which must name one of `names` (the file).

    Any other exception propagates (the fuzz test fails with it); the peak of the memory traced
    during the call must stay under `max_mb`.
    """
    names = (names,) if isinstance(names, str) else names
    tracemalloc.start()
    try:
        return call()
    except ValueError as err:
        assert any(n in str(err) for n in names), f"{type(err).__name__} does not name {names}: {err}"
        return err
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak <= max_mb * 2**20, f"peak memory {peak / 2**20:.0f} MB > {max_mb:g} MB"


def warm_up() -> None:
    """Run the numba-compiled steps of reading and cropping once: their first call compiles or loads
    the compiled code (seconds), which a per-example deadline would take for a hang."""
    from crossingnets.camera import CAMERAS
    from crossingnets.data.preprocess import CropConfig, preprocess

    depth = np.zeros((48, 64), np.float32)
    depth[4:44, 4:60] = 600.0
    cam = CAMERAS["nyu"]
    preprocess(depth, replace(cam, width_px=64, height_px=48), CropConfig(crop_px=16))


@st.composite
def mutated(draw: st.DrawFn, base: bytes, header_bytes: int = 64) -> bytes:
    """`base` truncated, with bits flipped (half of them in its first `header_bytes`), with a run of
    bytes overwritten, or replaced by random bytes."""
    kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "random"]))
    if kind == "truncate":
        return base[: draw(st.integers(0, len(base) - 1))]
    if kind == "random":  # a few kB: Hypothesis draws large binaries slowly, and the readers look at headers
        return draw(st.binary(max_size=4096))
    data = bytearray(base)
    if kind == "flip":
        bits = st.one_of(
            st.integers(0, 8 * min(header_bytes, len(base)) - 1), st.integers(0, 8 * len(base) - 1)
        )
        for bit in draw(st.lists(bits, min_size=1, max_size=8)):
            data[bit // 8] ^= 1 << (bit % 8)
        return bytes(data)
    start = draw(st.integers(0, len(base) - 1))
    patch = draw(st.binary(min_size=1, max_size=16))
    data[start : start + len(patch)] = patch
    return bytes(data)


# Floats where arithmetic breaks: zero, subnormals, huge, non-finite, negative; and None, which a
# cleared number box in the app sends.
EDGE_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 5e-324, 1e-300, 1e300, -1.0, 1.0, 0.5]),
    st.integers(-(2**40), 2**40),
    st.none(),
)
