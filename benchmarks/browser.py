"""The browser version's speed in headless Chromium (wasm, onnxruntime-web), served from localhost by
web/serve.py: model load time and bytes of a first visit, a one-face photo analysed after load, and the live
webcam loop on Chromium's fake camera (a 30 fps 640x480 Y4M clip, looped) with one face and with six, threads
on (cross-origin isolated, 2) and off (1): frames analysed a second, the camera's frames skipped (gaps in the
analysed frames' timestamps) and milliseconds per stage; and, as a gauge of the machine's speed at the time (it
drifts on shared machines), the median milliseconds of one YuNet run (416x320) and one CNN run (one face) alone.

    python benchmarks/browser.py [--seconds 10]
"""
from __future__ import annotations

import argparse
import gzip
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import CHROMIUM_FLAGS, astronaut_canvas, data_url, report, write_y4m  # noqa: E402
from web.serve import LOCAL_PAGE, serve, translate  # noqa: E402

PHOTO_TIMING = """async (url) => {
  const bitmap = await createImageBitmap(await (await fetch(url)).blob());
  const fer = await window.ferDemo.recognizer;
  for (let i = 0; i < 5; i++) await fer.analyze(bitmap);
  const times = [];
  for (let i = 0; i < 30; i++) { const t = performance.now(); await fer.analyze(bitmap); times.push(performance.now() - t); }
  return times;
}"""


NETWORKS_ALONE = """async () => {
  const fer = await window.ferDemo.recognizer, ort = fer.info.ort, side = fer.pre.crop_size || fer.pre.image_size;
  const median = async (session, feeds) => {
    for (let i = 0; i < 10; i++) await session.run(feeds());
    const times = [];
    for (let i = 0; i < 40; i++) { const t = performance.now(); await session.run(feeds()); times.push(performance.now() - t); }
    return times.sort((a, b) => a - b)[20];
  };
  return { yunet_416x320_ms: await median(fer.detector, () => ({ input: new ort.Tensor("float32", new Float32Array(3 * 320 * 416), [1, 3, 320, 416]) })),
           cnn_one_face_ms: await median(fer.classifier, () => ({ faces: new ort.Tensor("float32", new Float32Array(side * side), [1, 1, side, side]) })) };
}"""


def first_visit(page, base: str) -> dict:
    """Every file the page fetched on its first visit: bytes as served, and gzip-compressed (as a CDN sends text and wasm)."""
    urls = page.evaluate("performance.getEntriesByType('resource').map((r) => r.name)")
    files = {}
    for url in [base + "/"] + urls:
        path = translate(url.removeprefix(base).split("?")[0] or "/")
        if path.is_file():
            data = path.read_bytes()
            files[url.removeprefix(base)] = {"bytes": len(data), "gzip_bytes": len(gzip.compress(data, 6))}
    return {"files": files, "bytes": sum(f["bytes"] for f in files.values()),
            "gzip_bytes": sum(f["gzip_bytes"] for f in files.values())}


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
        for threads in (2, 1):
            runs = {}
            for faces, clip in clips.items():
                browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS + [
                    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                    f"--use-file-for-fake-video-capture={clip}"])
                page = browser.new_context(permissions=["camera"]).new_page()
                page.goto(f"{base}{LOCAL_PAGE}&threads={threads}")
                load_seconds = page.evaluate("window.ferDemo.loadSeconds")
                run = {"load_seconds": round(load_seconds, 2)}
                if faces == 1:
                    run["first_visit"] = first_visit(page, base)
                    times = page.evaluate(PHOTO_TIMING, data_url(photo))
                    run["photo_one_face_ms"] = {"median": round(statistics.median(times), 2), "min": round(min(times), 2)}
                    run["networks_alone_ms"] = {k: round(v, 2) for k, v in page.evaluate(NETWORKS_ALONE).items()}
                page.evaluate("window.ferDemo.startCamera()")
                time.sleep(3)
                before, start = page.evaluate("window.ferDemo.stats()"), time.monotonic()
                time.sleep(args.seconds)
                after, elapsed = page.evaluate("window.ferDemo.stats()"), time.monotonic() - start
                analysed, skipped = after["frames"] - before["frames"], after["skipped"] - before["skipped"]
                run["live"] = {"faces_seen": after["faces"], "frames_analysed_per_s": round(analysed / elapsed, 1),
                               "camera_frames_per_s": round((after["cameraFrames"] - before["cameraFrames"]) / elapsed, 1),
                               "frames_analysed": analysed, "frames_skipped": skipped,
                               "stages_ms": {k: round(v, 2) for k, v in after["stagesMs"].items()}}
                print(f"threads {threads}, {faces} face(s): {run}", flush=True)
                runs[f"faces_{faces}"] = run
                browser.close()
            results[f"threads_{threads}"] = runs
    server.shutdown()
    version = playwright_chromium_version()
    report("browser", {"chromium": version, "camera": "fake, 640x480 at 30 fps", "seconds": args.seconds, **results})


def playwright_chromium_version() -> str:
    import subprocess

    return subprocess.run([shutil.which("chromium"), "--version"], capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
