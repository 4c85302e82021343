"""The server's heap (crossingnets_app.memory): glibc's arenas capped, freed pages handed back."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

from crossingnets_app.memory import limit_arenas

GLIBC = sys.platform.startswith("linux") and "libc.so.6" in (ctypes.util.find_library("c") or "")

# A heap left at its high-water mark: 256 MB of 64 KB blocks (below glibc's mmap threshold, so they
# come from the heap) all freed but the last, which pins the heap's top; then the RSS before and
# after `trim`.
PINNED_HEAP = """
import sys
from crossingnets_app.memory import trim
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
blocks = [bytearray(65536) for _ in range(4096)]
last = blocks[-1]
del blocks
before = rss_mb()
assert trim()
print(before, rss_mb())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only (Linux); elsewhere both are no-ops")
def test_arenas_are_capped_and_a_pinned_heap_is_trimmed() -> None:
    assert limit_arenas() is True
    out = subprocess.run([sys.executable, "-c", PINNED_HEAP], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = map(float, out.stdout.split())
    assert before > 200 and after < before - 150, (before, after)
