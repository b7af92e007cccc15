"""The host allocator's setting (vaecnn.memory.keep_freed_host_memory): a large block freed and
allocated again comes back without faulting its pages in again."""

import subprocess
import sys

import pytest

# In a fresh interpreter (the setting is process-wide): allocate 64 MiB, touch every page, free it, then
# count the minor page faults of doing it again.
_REALLOCATE = """
import ctypes, resource, sys
from vaecnn import memory
applied = memory.keep_freed_host_memory() if sys.argv[1] == "keep" else None
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
libc.free.argtypes = (ctypes.c_void_p,)
size = 64 << 20
def touch_and_free():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
touch_and_free()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
touch_and_free()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults_of_a_second_allocation(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _REALLOCATE, mode], capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


def test_a_freed_block_is_reused_without_page_faults():
    applied, faults_kept = _faults_of_a_second_allocation("keep")
    if applied != "True":
        pytest.skip("the C library has no mallopt (not glibc): the setting does not apply")
    _, faults_default = _faults_of_a_second_allocation("default")
    # glibc's own setting maps the block afresh (16,384 pages of 4 KiB to fault in, fewer with huge
    # pages); kept, the second allocation reuses the pages of the first.
    assert faults_kept * 10 < faults_default, (faults_kept, faults_default)
