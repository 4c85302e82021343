"""The server's heap (crossingnets_app.memory): glibc's arenas capped, large blocks mapped apart,
freed pages handed back."""

from __future__ import annotations

import ctypes.util
import subprocess
import sys

import pytest

from crossingnets_app.memory import tune_heap

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
    assert tune_heap() is True
    out = subprocess.run([sys.executable, "-c", PINNED_HEAP], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    before, after = map(float, out.stdout.split())
    assert before > 200 and after < before - 150, (before, after)


# After a 4 MB block is freed glibc serves blocks up to 4 MB from the heap (its dynamic mmap
# threshold); 64 freed 1 MB blocks then stay in the RSS while a block allocated after them pins
# the heap's top. With `tune_heap` each 1 MB block is a mapping of its own, unmapped when freed.
LARGE_BLOCKS = """
import sys
from crossingnets_app.memory import tune_heap
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
if sys.argv[1] == "tuned":
    assert tune_heap()
big = bytearray(4 << 20)
del big
start = rss_mb()
blocks = [bytearray(1 << 20) for _ in range(64)]
pin = bytearray(200_000)  # too large for any hole below: the heap's new top
del blocks
print(rss_mb() - start)
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only (Linux); elsewhere a no-op")
def test_freed_large_blocks_leave_the_rss_only_with_the_tuned_heap() -> None:
    kept = {}
    for mode in ("default", "tuned"):
        out = subprocess.run(
            [sys.executable, "-c", LARGE_BLOCKS, mode], capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        kept[mode] = float(out.stdout)
    assert kept["default"] > 50 and kept["tuned"] < 10, kept
