"""Serve the browser page locally on the embedded model: `python web/serve.py` -> http://127.0.0.1:8000/

    /             this folder (index.html, app.js, fer.js, sw.js, examples/, thumbnails/, runtime/ with the
                  kernels that `npm run build` compiles)
    /models/      the embedded model (config.json, model.onnx, model_int8.onnx) and the face detector (yunet.onnx)
    /ort/         onnxruntime-web from web/node_modules (`npm ci`), the benchmarks' point of comparison (ORT_PAGE)

The bare `/` redirects to `?models=/models/`, so that the page loads everything from here. Every response carries
the cross-origin-isolation headers that the static Space sends (web/README.md).
"""
from __future__ import annotations

import argparse
import functools
import http.server
import threading
from pathlib import Path

WEB = Path(__file__).resolve().parent
ROOT = WEB.parent
ROUTES = {"/models/yunet.onnx": ROOT / "fer_model" / "detection" / "models" / "yunet.onnx",
          "/models/": ROOT / "fer_model" / "weights" / "default", "/ort/": WEB / "node_modules" / "onnxruntime-web" / "dist",
          "/": WEB}
HEADERS = {"Cross-Origin-Embedder-Policy": "require-corp", "Cross-Origin-Opener-Policy": "same-origin",
           "Cross-Origin-Resource-Policy": "cross-origin"}
KERNELS = WEB / "runtime" / "kernels.wasm"
LOCAL_PAGE = "/?models=/models/"
ORT_PAGE = "/?models=/models/&ort=/ort/"  # the same page on onnxruntime-web (web/node_modules), for comparison


def translate(path: str) -> Path:
    """The file a URL path is served from (a path that leads nowhere, for one outside the routes)."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    for prefix, target in ROUTES.items():
        if path.startswith(prefix) or path == prefix.rstrip("/"):
            if not target.is_dir():
                return target
            resolved = (target / path[len(prefix):]).resolve()
            return resolved if resolved.is_relative_to(target.resolve()) else WEB / "missing"
    return WEB / "missing"


class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".mjs": "text/javascript",
                      ".js": "text/javascript", ".wasm": "application/wasm", ".onnx": "application/octet-stream"}

    def do_GET(self):
        if self.path == "/":  # the local runtime and models, never the CDN's and the Hub's
            self.send_response(302)
            self.send_header("Location", LOCAL_PAGE)
            self.end_headers()
            return None
        return super().do_GET()

    def copyfile(self, source, outputfile):
        try:
            super().copyfile(source, outputfile)
        except (BrokenPipeError, ConnectionResetError):  # the browser left mid-file (a closed tab)
            pass

    def translate_path(self, path: str) -> str:
        return str(translate(path))

    def end_headers(self):
        for name, value in HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

    def log_message(self, *args):
        pass


def serve(port: int = 8000, host: str = "127.0.0.1") -> http.server.ThreadingHTTPServer:
    """Start the server in a background thread (port 0: any free one); returns it (`shutdown()` stops it)."""
    server = http.server.ThreadingHTTPServer((host, port), functools.partial(Handler, directory=str(WEB)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=8000)
    args = p.parse_args()
    if not KERNELS.is_file():
        raise SystemExit("the page's runtime is not built: run `npm run build` in web/ first")
    server = serve(args.port)
    print(f"serving the page on the embedded model: http://127.0.0.1:{args.port}{LOCAL_PAGE}  (Ctrl-C stops)")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    main()
