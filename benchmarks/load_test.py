"""Load test: start app.py on loopback and drive it with N concurrent clients, each way of calling it.

    python benchmarks/load_test.py [--levels 1,8,32,64] [--v1-levels 1,8,32,64,256] [--requests-per-client 20]

- `v1`: POST /v1/faces with the photo's bytes, from a plain HTTP client (httpx, one connection per client);
- `run`: Gradio's plain route: POST /gradio_api/upload, then POST /gradio_api/run/faces with the uploaded path;
- `client`: gradio_client's `predict(handle_file(photo), api_name="/faces")` (upload, queue, result stream);
- `client-sslctx`: the same with `Client(url, ssl_verify=ssl.create_default_context())`: one TLS context that the
  client's requests share, where by default each of them builds its own (the CA bundle read again).

The photo is a 640x480 JPEG with one face (benchmarks.common.photo_640x480); the app runs its default TTA.
Every level is bounded in requests and in time. Reports requests/s, latency percentiles, failures (by
status) and the server's resident memory (idle, after each level, and the peak), each way of calling on a
fresh server; saves benchmarks/results/load_test.json.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import photo_640x480, report  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PeakMemory(threading.Thread):
    """Polls the resident memory of a process and its children."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process, self.peak, self.stopped = psutil.Process(pid), 0, threading.Event()

    def rss(self) -> int:
        return sum(p.memory_info().rss for p in [self.process, *self.process.children(recursive=True)])

    def run(self):
        while not self.stopped.is_set():
            try:
                self.peak = max(self.peak, self.rss())
            except psutil.Error:
                pass
            time.sleep(0.05)


def percentile(values, q):
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1) if ordered else None


def figures(clients, latencies, failures, wall) -> dict:
    return {"clients": clients, "requests": len(latencies) + sum(failures.values()), "failed": sum(failures.values()),
            "failures": dict(failures), "requests_per_s": round(len(latencies) / wall, 1),
            "p50_ms": percentile(latencies, 0.5), "p95_ms": percentile(latencies, 0.95),
            "p99_ms": percentile(latencies, 0.99), "wall_s": round(wall, 1)}


async def drive_http(url: str, clients: int, photo: bytes, requests_per_client: int, seconds: float,
                     route: str) -> dict:
    """`clients` concurrent HTTP clients, each on its own connection, `requests_per_client` requests each."""
    import httpx

    latencies, failures = [], Counter()
    deadline = time.time() + seconds

    async def client():
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            for _ in range(requests_per_client):
                if time.time() > deadline:
                    return
                start = time.perf_counter()
                try:
                    if route == "run":
                        uploaded = (await http.post("gradio_api/upload", files=[("files", ("photo.jpg", photo))])).json()
                        response = await http.post("gradio_api/run/faces", json={"data": [
                            {"path": uploaded[0], "meta": {"_type": "gradio.FileData"}}]})
                    else:
                        response = await http.post("v1/faces", content=photo, headers={"Content-Type": "image/jpeg"})
                    payload = response.json() if response.status_code == 200 else None
                    if payload is None:
                        failures[f"HTTP {response.status_code}"] += 1
                        continue
                    faces = payload["data"][0] if route == "run" else payload
                    assert faces["count"] == 1, faces
                    latencies.append(time.perf_counter() - start)
                except Exception as err:  # a failed request is a figure here, not a crash
                    failures[type(err).__name__] += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return figures(clients, latencies, failures, time.perf_counter() - start)


def drive_gradio_client(url: str, clients: int, photo_path: str, requests_per_client: int, seconds: float,
                        ssl_verify: bool | ssl.SSLContext = True) -> dict:
    from gradio_client import Client, handle_file

    with ThreadPoolExecutor(min(clients, 16)) as pool:
        connected = list(pool.map(lambda _: Client(url, verbose=False, ssl_verify=ssl_verify), range(clients)))
    latencies, failures, lock = [], Counter(), threading.Lock()
    deadline = time.time() + seconds

    def drive(client):
        for _ in range(requests_per_client):
            if time.time() > deadline:
                return
            start = time.perf_counter()
            try:
                assert client.predict(handle_file(photo_path), api_name="/faces")["count"] == 1
                with lock:
                    latencies.append(time.perf_counter() - start)
            except Exception as err:
                with lock:
                    failures[type(err).__name__] += 1

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(drive, connected))
    return figures(clients, latencies, failures, time.perf_counter() - start)


def start_app(port: int) -> tuple[subprocess.Popen, object]:
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    log = tempfile.TemporaryFile()
    server = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return server, log
        except OSError:
            if server.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise SystemExit(f"the app did not start:\n{log.read().decode()[-2000:]}")
            time.sleep(0.5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--levels", default="1,8,32,64", help="numbers of concurrent clients")
    p.add_argument("--v1-levels", default="1,8,32,64,256", help="numbers of concurrent clients on /v1")
    p.add_argument("--paths", default="v1,run,client,client-sslctx",
                   help="ways of calling: v1, run, client, client-sslctx")
    p.add_argument("--requests-per-client", type=int, default=20)
    p.add_argument("--level-seconds", type=float, default=120)
    args = p.parse_args()
    photo = photo_640x480()
    results = {}
    with tempfile.NamedTemporaryFile(suffix=".jpg") as photo_file:
        photo_file.write(photo)
        photo_file.flush()
        for path in args.paths.split(","):  # each way of calling on a fresh server: its own memory figures
            port = free_port()
            url = f"http://127.0.0.1:{port}/"
            server, _ = start_app(port)
            try:
                memory = PeakMemory(server.pid)
                idle_mb = round(memory.rss() / 2**20, 1)
                memory.start()
                levels = []
                for clients in (int(n) for n in (args.v1_levels if path == "v1" else args.levels).split(",")):
                    if path.startswith("client"):
                        level = drive_gradio_client(url, clients, photo_file.name, args.requests_per_client,
                                                    args.level_seconds, ssl.create_default_context()
                                                    if path == "client-sslctx" else True)
                    else:
                        level = asyncio.run(drive_http(url, clients, photo, args.requests_per_client,
                                                       args.level_seconds, path))
                    level["server_rss_mb"] = round(memory.rss() / 2**20, 1)
                    levels.append(level)
                    print(path, level, flush=True)
                memory.stopped.set()
                results[path] = {"levels": levels, "server_idle_rss_mb": idle_mb,
                                 "server_peak_rss_mb": round(memory.peak / 2**20, 1)}
            finally:
                server.terminate()
                server.wait(timeout=30)
    report("load_test", {"photo": "640x480 JPEG, one face", "requests_per_client": args.requests_per_client,
                         "paths": results})

if __name__ == "__main__":
    main()
