"""metastress.engine.malloc: glibc keeps freed memory for reuse instead of handing it back.

Run in a fresh interpreter: other tests may already have called keep_freed_memory here.
"""

import json
import platform
import subprocess
import sys

import pytest

PROBE = """
import ctypes, ctypes.util, json
from metastress.engine.malloc import keep_freed_memory

BLOCK = 64 << 20  # above glibc's default mmap threshold
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]

def resident():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096

def kept_after_free():
    before = resident()
    block = libc.malloc(BLOCK)
    ctypes.memset(block, 1, BLOCK)
    libc.free(block)
    return (resident() - before) / BLOCK

default = kept_after_free()
switched = keep_freed_memory()
print(json.dumps([default, switched, kept_after_free(), kept_after_free()]))
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_freed_memory_stays_in_the_process_only_after_keep_freed_memory():
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    default, switched, first, second = json.loads(out.stdout)
    assert default < 0.5  # glibc's default: the freed block is unmapped at once
    assert switched
    assert first > 0.9  # now the freed block stays resident...
    assert second < 0.5  # ...and the next one reuses its pages
