"""The browser page in headless Chromium, served from localhost by web/serve.py, on its own runtime
(web/runtime/) and, beside it in the same run, on onnxruntime-web (web/node_modules, threads on: 2, and off):

- first visit: every file fetched, in bytes, gzip (level 6) and brotli (quality 11), as a CDN would send them;
- ready: milliseconds from navigation until the models are loaded (`window.ferDemo.ready`), the minimum and
  median of 3 cold visits (a fresh browser context each: empty cache, no service worker);
- a one-face 640x480 photo analysed after load (flip TTA), 30 times;
- the live webcam loop on Chromium's fake camera (a 30 fps 640x480 Y4M clip, looped) with one face and with six:
  frames analysed a second, the camera's frames skipped, milliseconds per stage;
- as a gauge of the machine at the time, the median milliseconds of one YuNet run (416x320) and one CNN run
  (one face) alone.

    python benchmarks/browser.py [--seconds 10]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import CHROMIUM_FLAGS, astronaut_canvas, data_url, report, served_sizes, write_y4m  # noqa: E402
from web.serve import LOCAL_PAGE, ORT_PAGE, serve, translate  # noqa: E402

RUNTIMES = {"fer-wasm": LOCAL_PAGE, "onnxruntime-web, 2 threads": ORT_PAGE + "&threads=2",
            "onnxruntime-web, 1 thread": ORT_PAGE + "&threads=1"}

PHOTO_TIMING = """async (url) => {
  const bitmap = await createImageBitmap(await (await fetch(url)).blob());
  const fer = await window.ferDemo.recognizer;
  for (let i = 0; i < 5; i++) await fer.analyze(bitmap);
  const times = [];
  for (let i = 0; i < 30; i++) { const t = performance.now(); await fer.analyze(bitmap); times.push(performance.now() - t); }
  return times;
}"""

NETWORKS_ALONE = """async () => {
  const fer = await window.ferDemo.recognizer, side = fer.pre.crop_size || fer.pre.image_size;
  const median = async (network, feeds) => {
    for (let i = 0; i < 10; i++) await network.run(feeds());
    const times = [];
    for (let i = 0; i < 40; i++) { const t = performance.now(); await network.run(feeds()); times.push(performance.now() - t); }
    return times.sort((a, b) => a - b)[20];
  };
  return { yunet_416x320_ms: await median(fer.detector, () => ({ input: { data: new Float32Array(3 * 320 * 416), dims: [1, 3, 320, 416] } })),
           cnn_one_face_ms: await median(fer.classifier, () => ({ faces: { data: new Float32Array(side * side), dims: [1, 1, side, side] } })) };
}"""


def first_visit(page, base: str) -> dict:
    """Every file the page fetched on its first visit, the examples' thumbnails included: bytes as served, gzip
    and brotli."""
    page.evaluate("window.ferDemo.offlineReady")  # the examples come after ready
    page.wait_for_function("[...document.querySelectorAll('#examples img')].every((img) => img.complete)")
    urls = page.evaluate("performance.getEntriesByType('resource').map((r) => r.name)")
    files = {}
    for url in [base + "/", base + "/sw.js"] + urls:  # the page itself and its service worker are no resource entries
        path = translate(url.removeprefix(base).split("?")[0] or "/")
        path = path / "index.html" if path.is_dir() else path
        if path.is_file():
            data = path.read_bytes()
            files[url.removeprefix(base).split("?")[0]] = served_sizes(data)
    return {"files": files, **{key: sum(f[key] for f in files.values()) for key in ("bytes", "gzip_bytes", "brotli_bytes")}}


def ready_ms(playwright, url: str, visits: int = 3) -> dict:
    """Navigation to `window.ferDemo.ready`, cold (a new context each visit)."""
    browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
    times = []
    for _ in range(visits):
        context = browser.new_context()
        page = context.new_page()
        page.goto(url)
        times.append(page.evaluate("window.ferDemo.readyMs"))
        context.close()
    browser.close()
    return {"min": round(min(times)), "median": round(statistics.median(times)), "visits": [round(t) for t in times]}


def measure(playwright, base: str, page_url: str, clips: dict, photo, seconds: float) -> dict:
    run = {"ready_ms": ready_ms(playwright, base + page_url)}
    for faces, clip in clips.items():
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS + [
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={clip}"])
        page = browser.new_context(permissions=["camera"]).new_page()
        page.goto(base + page_url)
        page.evaluate("window.ferDemo.ready")
        if faces == 1:
            run["first_visit"] = first_visit(page, base)
            times = page.evaluate(PHOTO_TIMING, data_url(photo))
            run["photo_one_face_ms"] = {"median": round(statistics.median(times), 2), "min": round(min(times), 2)}
            run["networks_alone_ms"] = {k: round(v, 2) for k, v in page.evaluate(NETWORKS_ALONE).items()}
        page.evaluate("window.ferDemo.startCamera()")
        time.sleep(3)
        before, start = page.evaluate("window.ferDemo.stats()"), time.monotonic()
        time.sleep(seconds)
        after, elapsed = page.evaluate("window.ferDemo.stats()"), time.monotonic() - start
        analysed = after["frames"] - before["frames"]
        run[f"live_{faces}_faces"] = {
            "faces_seen": after["faces"], "frames_analysed_per_s": round(analysed / elapsed, 1),
            "camera_frames_per_s": round((after["cameraFrames"] - before["cameraFrames"]) / elapsed, 1),
            "frames_analysed": analysed, "frames_skipped": after["skipped"] - before["skipped"],
            "stages_ms": {k: round(v, 2) for k, v in after["stagesMs"].items()}}
        browser.close()
    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10, help="how long the live loop is timed, after 3 s of warm-up")
    args = p.parse_args()
    from playwright.sync_api import sync_playwright

    server, scratch = serve(0), Path(tempfile.mkdtemp())
    base = f"http://127.0.0.1:{server.server_address[1]}"
    photo = astronaut_canvas((640, 480), [150], seed=11)[0]
    clips = {faces: write_y4m(scratch / f"faces{faces}.y4m", [astronaut_canvas((640, 480), widths, seed=12)[0]] * 30)
             for faces, widths in ((1, [150]), (6, [90, 80, 70, 85, 75, 95]))}
    results = {}
    with sync_playwright() as playwright:
        for name, page_url in RUNTIMES.items():
            results[name] = measure(playwright, base, page_url, clips, photo, args.seconds)
            summary = {k: v for k, v in results[name].items() if k != "first_visit"}
            visit = results[name]["first_visit"]
            print(f"{name}: first visit {visit['gzip_bytes'] / 1e6:.2f} MB gzip, {visit['brotli_bytes'] / 1e6:.2f} MB brotli; "
                  f"{summary}", flush=True)
    server.shutdown()
    shutil.rmtree(scratch)
    version = subprocess.run([shutil.which("chromium"), "--version"], capture_output=True, text=True).stdout.strip()
    report("browser", {"chromium": version, "camera": "fake, 640x480 at 30 fps", "seconds": args.seconds, **results})


if __name__ == "__main__":
    main()
