"""Process-wide settings a photo's speed depends on, made once when `fer_model` is imported.

- Threads: `FER_THREADS` sets how many threads the CNN and the face detector each use per call, on
  ONNX Runtime or torch (default: `DEFAULT_THREADS`; the app runs one per request, two requests at a time).
  ONNX Runtime's threads do not spin between calls (`session_options`): on a shared 2-core machine,
  spinning threads hold the core another call needs. Its memory pattern is off: planned per input shape,
  it re-allocated for every new number of faces (a 2048x1536 photo with eight: ~200 page faults, 1 without).
- torch's GNU OpenMP workers spin for ~300,000 rounds after each parallel region, holding the core
  that the detector then runs on: `GOMP_SPINCOUNT` 10,000 took a 640x480 photo from 13.0 to 10.0 ms
  on 2 cores on the torch path (benchmarks/results/openmp_spin.json). OpenMP reads it once, when torch loads.
- glibc hands freed blocks over 128 KB back to the OS, so that the next photo can page-fault its
  buffers afresh. Its thresholds are set to the values glibc's own adaptive ones may grow to:
  allocations under 32 MB come from the heap, trimmed past 64 MB free. No-op outside glibc.
- FFmpeg, inside OpenCV, logs nothing (`OPENCV_FFMPEG_LOGLEVEL`): a broken video gets the package's one-line
  error, not "moov atom not found" before it.
Each respects a value the user has set.
"""
from __future__ import annotations

import ctypes
import os
import platform
import sys
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
DEFAULT_THREADS = 2
"""Threads per call when `FER_THREADS` is unset: on 2 cores, 2 halve a batch of 64 and read level with 1 on
one photo (benchmarks/cpu_latency.py, docs/speed.md)."""


def threads() -> int:
    """Threads per call for the CNN and the detector: `FER_THREADS`, else `DEFAULT_THREADS` (at most the cores)."""
    value = os.environ.get("FER_THREADS")
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise ValueError(f"FER_THREADS must be a whole number, not {value!r}") from None
    return max(1, min(DEFAULT_THREADS, os.cpu_count() or 1))


def session_options(num_threads: int | None = None):
    """ONNX Runtime session options: `num_threads` intra-op threads (default `threads()`), no spinning."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = num_threads or threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.enable_mem_pattern = False  # its plan is per input shape: with changing batches it page-faults afresh
    options.log_severity_level = 3  # errors only
    return options


def cpu_name() -> str:
    """The CPU's model name (e.g. "AMD EPYC"), for run records and benchmark reports."""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            names = [line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")]
        if names:
            return names[0]
    return platform.processor() or platform.machine()


@contextmanager
def native_stderr_silenced():
    """Nothing that native code (OpenCV's own warnings) writes to the process's stderr while inside comes out."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def configure() -> None:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    if platform.libc_ver()[0] == "glibc" and not {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


configure()
