"""The MCP server (Streamable HTTP) that `app.py` mounts at `/mcp/`: tools `predict`, `faces` and `video`.

Each tool takes its image or video as one string, which an assistant can always give:
- an `http(s)://` URL of a public file (fetched with SSRF protection: private and loopback hosts are refused);
- a `data:` URL (`data:image/jpeg;base64,...`);
- a file uploaded to this app (`POST /gradio_api/upload`): the path it returned, or its `/gradio_api/file=` URL,
  which is read from this server's upload folder, never fetched.
Needs the `mcp` package (the `app` extra).
"""
from __future__ import annotations

import base64
import binascii
import inspect
import ipaddress
import json
import tempfile
import urllib.parse
from pathlib import Path
from typing import Annotated

from ..errors import InvalidImageError, require
from ..results import NO_FACE, analyze_photo
from .pool import RecognizerPool

require("mcp", "the MCP server", extra="app")
from mcp.server.fastmcp import FastMCP  # noqa: E402
from mcp.server.transport_security import TransportSecuritySettings  # noqa: E402
from mcp.types import CallToolResult, TextContent  # noqa: E402
from pydantic import Field  # noqa: E402

MAX_BYTES = 100 << 20
FILE_ROUTE = "/gradio_api/file="


def reference(example_type: str) -> str:
    """How a tool's file argument may be given, with a data: URL example of `example_type`."""
    return (f"an http(s) URL of a public file, a data: URL (data:{example_type};base64,...), or a file uploaded to "
            "this app with POST /gradio_api/upload (the path it returned, or its /gradio_api/file= URL)")


REFERENCE = reference("image/jpeg")
PhotoReference = Annotated[str, Field(description=f"The photo: {REFERENCE}.")]
VideoReference = Annotated[str, Field(description=f"The video (MP4, WebM, MOV, ...): {reference('video/mp4')}.")]


def compact(result: dict) -> CallToolResult:
    """A tool's answer as structured content and as one line of JSON text (no indentation: fewer tokens)."""
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(result, separators=(",", ":")))],
                          structuredContent=result)


class ReferenceError(InvalidImageError):
    """A string that does not lead to a file the tools may read."""


async def read_reference(reference: str, upload_folder: str | Path, max_bytes: int = MAX_BYTES) -> tuple[bytes, str]:
    """The bytes a tool's `reference` string leads to, and a file suffix for them (".jpg", "" when unknown)."""
    reference = reference.strip()
    if reference.startswith("data:"):
        return _data_url(reference)
    parsed = urllib.parse.urlparse(reference)
    if parsed.scheme in ("http", "https"):
        if FILE_ROUTE in reference:
            local = urllib.parse.unquote(reference.split(FILE_ROUTE, 1)[1].split("?", 1)[0])
            if _inside(local, upload_folder):
                return _read_upload(local, upload_folder, max_bytes)
        return await _fetch(reference, max_bytes)
    if parsed.scheme in ("", "file"):
        return _read_upload(urllib.parse.unquote(parsed.path) if parsed.scheme else reference, upload_folder, max_bytes)
    raise ReferenceError(f"cannot read {reference[:60]!r}: pass {REFERENCE}")


def _data_url(reference: str) -> tuple[bytes, str]:
    header, comma, payload = reference.partition(",")
    if not comma:
        raise ReferenceError("the data: URL has no ',' before its data")
    try:
        data = base64.b64decode(payload, validate=False) if header.endswith(";base64") else \
            urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as err:
        raise ReferenceError(f"the data: URL's base64 cannot be decoded ({err})") from None
    mime = header[5:].split(";", 1)[0]
    return data, "." + mime.split("/", 1)[1] if "/" in mime else ""


def _inside(path: str, folder: str | Path) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def _read_upload(path: str, upload_folder: str | Path, max_bytes: int) -> tuple[bytes, str]:
    if not _inside(path, upload_folder):
        raise ReferenceError(f"{path!r} is not a file uploaded to this app: pass {REFERENCE}")
    file = Path(path)
    if not file.is_file():
        raise ReferenceError(f"no uploaded file at {path!r}: upload it again with POST /gradio_api/upload")
    if file.stat().st_size > max_bytes:
        raise ReferenceError(f"the file is over the {max_bytes >> 20} MB limit")
    return file.read_bytes(), file.suffix.lower()


async def _fetch(url: str, max_bytes: int) -> tuple[bytes, str]:
    import safehttpx

    host = urllib.parse.urlparse(url).hostname or ""
    try:
        private = not ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        private = host == "localhost" or host.endswith(".localhost")
    if private:
        raise ReferenceError(f"URLs on private or loopback hosts ({host}) are not fetched: pass a public URL, "
                             "a data: URL or a file uploaded to this app")
    try:
        response = await safehttpx.get(url, timeout=20, follow_redirects=False)
    except Exception as err:  # unreachable host, refused validation, timeout: one line for the assistant
        raise ReferenceError(f"could not fetch {url[:80]}: {err}") from None
    if response.status_code != 200:
        raise ReferenceError(f"fetching {url[:80]} answered HTTP {response.status_code}")
    if len(response.content) > max_bytes:
        raise ReferenceError(f"the file at {url[:80]} is over the {max_bytes >> 20} MB limit")
    return response.content, Path(urllib.parse.urlparse(url).path).suffix.lower()


def create_mcp(pool: RecognizerPool, upload_folder: str | Path, analyze_clip, labels) -> FastMCP:
    """The MCP server: photos run on `pool`, whose model reads `labels`; `analyze_clip(recognizer, path) -> dict`
    analyses a video file."""
    server = FastMCP("facial-expressions", streamable_http_path="/", stateless_http=True, json_response=True,
                     max_request_body_size=MAX_BYTES * 4 // 3 + (1 << 20),  # a data: URL is base64
                     transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))

    async def photo(image: str, baseline: str | None = None) -> dict:
        data, _ = await read_reference(image, upload_folder)
        rest = (await read_reference(baseline, upload_folder))[0] if baseline else None
        return await pool.run_async(lambda recognizer: analyze_photo(
            recognizer.personalize(rest) if rest is not None else recognizer, data))

    @server.tool(description=inspect.cleandoc(f"""The emotion of the main (largest) face in a photo.

        Returns the face's `label` (one of {', '.join(labels[:-1])} or {labels[-1]}), its `confidence`, `scores`
        (the calibrated probability of each label), `uncertain` (true when the model is unsure) and `box`
        [x, y, width, height] in pixels; `count` 0 and a `message` when no face is found."""))
    async def predict(image: PhotoReference) -> dict:
        result = await photo(image)
        return compact({"count": result["count"], **result["faces"][0]} if result["faces"]
                       else {"count": 0, "message": NO_FACE})

    @server.tool()
    async def faces(image: PhotoReference, baseline: PhotoReference | None = None) -> dict:
        """Every face in a photo with its emotion.

        Returns the image size, `count`, and for each face, largest first: `box` [x, y, width, height] in
        pixels, `label`, `confidence`, `scores` (the calibrated probability of each label), `uncertain`
        (true when the model is unsure) and `detection_score`; `count` 0 and a `message` when no face is found.
        `baseline`, optional: a photo of the same person at rest (as `image` is given); the faces are then read
        against that resting face, which changes a reading only for a photo taken in the same light and pose.
        """
        return compact(await photo(image, baseline))

    @server.tool()
    async def video(video: VideoReference) -> dict:
        """Emotions over time in a video, each face tracked across frames; about 5 frames a second are
        analysed, at most 300 (60 s).

        Returns `frames`, each with `frame` (index), `time` (seconds) and `faces` (as the faces tool gives,
        plus a `track_id` that stays the same for the same person); `tracks`, a summary per face (dominant
        emotion, mean scores, time on screen); `truncated`, true when the video was longer than the limit.
        """
        data, suffix = await read_reference(video, upload_folder)
        with tempfile.NamedTemporaryFile(suffix=suffix or ".mp4") as file:
            file.write(data)
            file.flush()
            return compact(await pool.run_async(lambda recognizer: analyze_clip(recognizer, file.name)))

    return server
