"""Process-wide settings a photo's speed depends on, made once when `fer_model` is imported.

- torch's GNU OpenMP workers spin for ~300,000 rounds after each parallel region, holding the core
  that OpenCV's threads then detect faces on: `GOMP_SPINCOUNT` 10,000 takes a 640x480 photo from 13.0
  to 10.0 ms on 2 cores (benchmarks/openmp_spin.py). OpenMP reads it once, when torch loads it: import
  fer_model before torch (the app, the command line and the benchmarks do), or set it yourself.
- glibc hands freed blocks over 128 KB back to the OS, so that the next photo can page-fault its
  buffers afresh (a 2048x1536 photo: 34 ms, or 47 ms in some processes). Its thresholds are set to the
  values glibc's own adaptive ones may grow to: allocations under 32 MB come from the heap, trimmed past
  64 MB free. No-op outside glibc. Both respect a value the user has set.
"""
from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def configure() -> None:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    if platform.libc_ver()[0] == "glibc" and not {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


configure()
