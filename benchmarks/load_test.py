"""Load test: start app.py on loopback and drive /predict with N concurrent gradio_client clients.

    python benchmarks/load_test.py [--levels 1,4,16,32] [--requests-per-client 8] [--level-seconds 180]

Each level is bounded in requests and time. Reports requests/s, latency percentiles, errors and
the server's peak resident memory; saves benchmarks/results/load_test.json.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import photo_640x480, report  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photos(folder: Path) -> list[str]:
    """Real photos: the astronaut portrait, the same on a 640x480 canvas, and a half-size copy."""
    from skimage import data

    astronaut = Image.fromarray(data.astronaut())
    (folder / "canvas.jpg").write_bytes(photo_640x480())
    for name, image in (("astronaut.jpg", astronaut), ("small.jpg", astronaut.resize((256, 256)))):
        image.save(folder / name, quality=90)
    return [str(folder / name) for name in ("astronaut.jpg", "canvas.jpg", "small.jpg")]


class PeakMemory(threading.Thread):
    """Polls the resident memory of a process and its children."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.stopped = psutil.Process(pid), 0, threading.Event()

    def run(self):
        while not self.stopped.is_set():
            try:
                rss = sum(p.memory_info().rss for p in [self.process, *self.process.children(recursive=True)])
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)


def percentile(values, q):
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None


def run_level(url, clients, images, requests_per_client, seconds):
    from gradio_client import Client, handle_file

    with ThreadPoolExecutor(clients) as pool:
        connected = list(pool.map(lambda _: Client(url, verbose=False), range(clients)))
    deadline = time.time() + seconds
    latencies, errors = [], []

    def drive(i):
        client, own = connected[i], []
        for r in range(requests_per_client):
            if time.time() > deadline:
                break
            start = time.perf_counter()
            try:
                result = client.predict(handle_file(images[(i + r) % len(images)]), api_name="/predict")
                assert result["label"], result
                own.append(time.perf_counter() - start)
            except Exception as err:  # a failed request is a figure here, not a crash
                errors.append(f"{type(err).__name__}: {err}"[:200])
        return own

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        per_client = list(pool.map(drive, range(clients)))
    wall = time.perf_counter() - start
    for own in per_client:
        latencies += own
    return {"clients": clients, "requests": len(latencies) + len(errors), "errors": len(errors),
            "error_samples": errors[:3], "requests_per_s": round(len(latencies) / wall, 2),
            "p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95),
            "p99_ms": percentile(latencies, 0.99),
            "single_client_p95_ms": round(statistics.mean(percentile(o, 0.95) for o in per_client if o), 1),
            "wall_s": round(wall, 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,4,16,32")
    p.add_argument("--requests-per-client", type=int, default=8)
    p.add_argument("--level-seconds", type=float, default=180)
    args = p.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = tempfile.TemporaryFile()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    log.seek(0)
                    raise SystemExit(f"the app did not start:\n{log.read().decode()[-2000:]}")
                time.sleep(0.5)
        memory = PeakMemory(server.pid)
        memory.start()
        idle_rss = psutil.Process(server.pid).memory_info().rss
        with tempfile.TemporaryDirectory() as folder:
            images = photos(Path(folder))
            levels = []
            for clients in (int(n) for n in args.levels.split(",")):
                levels.append(run_level(url, clients, images, args.requests_per_client, args.level_seconds))
                print(levels[-1], flush=True)
        memory.stopped.set()
        report("load_test", {"levels": levels, "server_idle_rss_mb": round(idle_rss / 2**20, 1),
                             "server_peak_rss_mb": round(memory.peak / 2**20, 1),
                             "requests_per_client": args.requests_per_client})
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
