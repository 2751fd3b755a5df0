"""The plain HTTP API (`/v1`): a photo in one POST, the `/faces` JSON out; mounted by `app.py` on the app's port.

    POST /v1/faces          the image as the body (any image/* type) or the multipart field `image`; ?tta=
    POST /v1/faces/batch    several multipart images (`images`, or `image` repeated): a list of results, in order
    GET  /v1/health         {"status": "ok", ...}: workers, queue size and calls in flight
    GET  /v1/docs           the OpenAPI docs page (/v1/openapi.json the schema), its assets served here (offline)

Errors are `{"error": "one readable line"}`: 400 not a usable image, 401 a missing or wrong token, 413 a body
over the limit (refused before it is read whole), 415 not an image type, 503 (with Retry-After) when every
worker is busy and the queue is full. Needs FastAPI (the `app` extra).
"""
from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FERError, require
from ..results import analyze_photo
from .pool import PoolFullError, RecognizerPool
from ..calibration.tta import TTA_MODES

require("fastapi", "the HTTP API", extra="app")
from fastapi import Depends, FastAPI, Query, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.middleware.cors import CORSMiddleware  # noqa: E402
from fastapi.openapi.docs import get_swagger_ui_html  # noqa: E402
from fastapi.staticfiles import StaticFiles  # noqa: E402
from fastapi.responses import JSONResponse  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402

log = logging.getLogger(__name__)
SWAGGER_ASSETS = Path(require("fastapi_offline", "the HTTP API's docs page", extra="app").__file__).parent / "static"
"""Swagger UI's script, style and icon, from a package (the docs page works with no internet)."""
IMAGE_TYPES = ("image/", "application/octet-stream")
"""Content types read as an image (a body or a multipart part); anything else is 415."""
RETRY_AFTER_S = 1
EXAMPLE = {"image": {"width": 512, "height": 512}, "count": 1, "faces": [{
    "box": [181, 65, 88, 111], "label": "happy", "confidence": 0.93,
    "scores": {"angry": 0.0, "disgust": 0.0, "fear": 0.01, "happy": 0.93, "sad": 0.01, "surprise": 0.0,
               "neutral": 0.05}, "uncertain": False, "detection_score": 0.92}]}


@dataclass
class Settings:
    """What a deployment sets: the body limit, images per batch, a bearer token and CORS origins."""

    max_body_bytes: int = 100 << 20
    """A 200 MP phone photo is 30-80 MB."""
    max_batch_images: int = 32
    token: str | None = None
    cors_origins: list[str] = field(default_factory=list)

    @classmethod
    def from_env(cls, environ) -> "Settings":
        """`FER_MAX_BODY_MB`, `FER_MAX_BATCH`, `FER_API_TOKEN` and `FER_CORS_ORIGINS` (comma-separated, or *)."""
        settings = cls(token=environ.get("FER_API_TOKEN") or None,
                       cors_origins=[o.strip() for o in environ.get("FER_CORS_ORIGINS", "").split(",") if o.strip()])
        if environ.get("FER_MAX_BODY_MB"):
            settings.max_body_bytes = int(float(environ["FER_MAX_BODY_MB"]) * (1 << 20))
        if environ.get("FER_MAX_BATCH"):
            settings.max_batch_images = int(environ["FER_MAX_BATCH"])
        return settings


class BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: a request whose body is over `limit` bytes gets 413, by its Content-Length before
    anything is read, or as soon as the bytes streamed past the limit."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await error(413, self.too_large())(scope, receive, send)
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.too_large())
            return message

        return await self.app(scope, limited, send)

    def too_large(self) -> str:
        return f"the request body is over the {self.limit / (1 << 20):g} MB limit"


def error(status: int, message: str, **headers) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers or None)


def create_api(pool: RecognizerPool, settings: Settings | None = None) -> FastAPI:
    """The `/v1` application, running every photo on `pool`'s recognizers; mount it at `/v1`."""
    settings = settings or Settings()
    api = FastAPI(title="Facial expression recognition API", version="1",
                  description="Every face in a photo and its emotion. Errors are `{\"error\": \"...\"}`.",
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json")
    api.mount("/static", StaticFiles(directory=SWAGGER_ASSETS), name="static")

    @api.get("/docs", include_in_schema=False)
    async def docs(request: Request):
        """Swagger UI from this server's own copy of its assets (the fastapi-offline package), not a CDN."""
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(openapi_url=f"{root}/openapi.json", title=api.title,
                                   swagger_js_url=f"{root}/static/swagger-ui-bundle.js",
                                   swagger_css_url=f"{root}/static/swagger-ui.css",
                                   swagger_favicon_url=f"{root}/static/favicon.png")

    def refuse(status: int, message: str, **headers) -> JSONResponse:
        log.info("%s %s", status, message)  # the client's mistake: one line, no traceback
        return error(status, message, **headers)

    @api.exception_handler(HTTPException)
    async def http_error(request, err: HTTPException):
        return refuse(err.status_code, str(err.detail), **(err.headers or {}))

    @api.exception_handler(RequestValidationError)
    async def invalid_request(request, err: RequestValidationError):
        first = err.errors()[0]
        return refuse(400, f"{'.'.join(map(str, first['loc'][1:]))}: {first['msg']}")

    @api.exception_handler(BodyTooLarge)
    async def too_large(request, err: BodyTooLarge):
        return refuse(413, str(err))

    @api.exception_handler(FERError)
    async def unusable(request, err: FERError):
        if isinstance(err, PoolFullError):
            return refuse(503, str(err), **{"Retry-After": str(RETRY_AFTER_S)})
        return refuse(400, str(err))

    @api.exception_handler(Exception)
    async def unexpected(request, err: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return error(500, "internal error: the server could not analyse this request")

    def authorized(request: Request) -> None:
        if not bearer_allows(request.headers.get("authorization"), settings.token):
            raise HTTPException(401, UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})

    admitted = 0

    async def admit():
        """At most the pool's capacity of requests past this point, so that no more bodies than that are ever
        read into memory: one more is refused before its body is read."""
        nonlocal admitted
        if admitted >= pool.capacity:
            raise pool.full()
        admitted += 1
        try:
            yield
        finally:
            admitted -= 1

    async def analyze(data: bytes, tta: str | None, baseline: bytes | None = None) -> dict:
        return await pool.run_async(lambda recognizer: analyze_photo(
            recognizer.personalize(baseline) if baseline is not None else recognizer, data, tta))

    tta_query = Query(None, description=f"test-time augmentation: {', '.join(TTA_MODES)} (default: the model's)")
    tta_query.json_schema_extra = {"enum": list(TTA_MODES)}

    @api.post("/faces", dependencies=[Depends(authorized), Depends(admit)], summary="Every face in a photo",
              responses={200: {"content": {"application/json": {"example": EXAMPLE}}}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  "image/*": {"schema": {"type": "string", "format": "binary"}},
                  "multipart/form-data": {"schema": {"type": "object", "required": ["image"], "properties": {
                      "image": {"type": "string", "format": "binary"},
                      "baseline": {"type": "string", "format": "binary", "description":
                                   "optional: a photo of the same person at rest, to read the faces against"}}}}}}})
    async def faces(request: Request, tta: str | None = tta_query) -> dict:
        """A photo (JPEG, PNG, WebP, ...) as the request body or as the multipart field `image`: the image
        size, `count`, and per face from the largest its `box` [x, y, width, height], `label`, `confidence`,
        `scores`, `uncertain` and `detection_score`; `count` 0 and a `message` when no face is found. The
        optional multipart field `baseline`, a photo of the same person at rest, has the faces read against
        that resting face (`fer_model.baseline`: only a photo taken in the same light and pose changes)."""
        check_tta(tta)
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            parts = await multipart_images(request, ("image", "baseline"))
            images = [data for name, data in parts if name == "image"]
            baselines = [data for name, data in parts if name == "baseline"]
            if len(images) != 1:
                raise HTTPException(400, "send one photo in the multipart field 'image' (several: /v1/faces/batch)")
            if len(baselines) > 1:
                raise HTTPException(400, "send at most one resting-face photo in the multipart field 'baseline'")
            for data in images + baselines:
                if isinstance(data, str):
                    raise HTTPException(415, data)
            return await analyze(images[0], tta, baselines[0] if baselines else None)
        check_image_type(content_type)
        data = await request.body()
        if not data:
            raise HTTPException(400, "the request body is empty: send the photo's bytes")
        return await analyze(data, tta)

    @api.post("/faces/batch", dependencies=[Depends(authorized), Depends(admit)],
              summary="Every face in several photos",
              openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                  "type": "object", "required": ["images"],
                  "properties": {"images": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}})
    async def faces_batch(request: Request, tta: str | None = tta_query) -> list[dict]:
        """Several photos (at most 32, `FER_MAX_BATCH`) as multipart fields `images` (or `image`, repeated): one
        `/v1/faces` result per photo, in order; a part that is not a usable image (a corrupt file, or a type that
        is not an image's) gets `{"error": "..."}` in its place."""
        check_tta(tta)
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise HTTPException(415, "send the photos as multipart/form-data fields named 'images'")
        images = [data for _, data in await multipart_images(request, ("images", "image"))]
        if not images:
            raise HTTPException(400, "no photos: send them as multipart fields named 'images'")
        if len(images) > settings.max_batch_images:
            raise HTTPException(413, f"{len(images)} photos: at most {settings.max_batch_images} a request")
        futures = [data if isinstance(data, str) else
                   pool.submit(lambda recognizer, data=data: analyze_photo(recognizer, data, tta)) for data in images]
        results = []
        for future in futures:
            if isinstance(future, str):  # a part of another type than an image's
                results.append({"error": future})
                continue
            try:
                results.append(await asyncio.wrap_future(future))
            except FERError as err:
                results.append({"error": str(err)})
        return results

    @api.get("/health", summary="Liveness and load")
    async def health() -> dict:
        return {"status": "ok", "workers": pool.workers, "queue_size": pool.queue_size, "in_flight": pool.in_flight}

    def check_tta(tta: str | None) -> None:
        if tta is not None and tta not in TTA_MODES:
            raise HTTPException(400, f"unknown tta {tta!r}: choose one of {', '.join(TTA_MODES)}")

    if settings.cors_origins:
        api.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    api.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    return api


def not_an_image(content_type: str) -> str | None:
    """Why a body or part of `content_type` is not read as an image; None where it is."""
    if content_type and not content_type.lower().startswith(IMAGE_TYPES):
        return (f"the content type {content_type.split(';')[0]!r} is not an image: send the photo's bytes as "
                "image/jpeg, image/png, ... or as multipart/form-data")
    return None


UNAUTHORIZED = "a valid 'Authorization: Bearer <token>' header is required"


def bearer_allows(authorization: str | None, token: str | None) -> bool:
    """Whether an `Authorization` header value carries `token` (any request does where no token is set)."""
    if token is None:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class BearerOnly:
    """An ASGI app (the MCP server) behind the same bearer token as `/v1`: 401 and one JSON line without it."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    async def __call__(self, scope, receive, send):
        headers = dict(scope.get("headers") or [])
        if scope["type"] == "http" and not bearer_allows(headers.get(b"authorization", b"").decode("latin-1"), self.token):
            return await error(401, UNAUTHORIZED, **{"WWW-Authenticate": "Bearer"})(scope, receive, send)
        return await self.app(scope, receive, send)


def bearer_only(app, token: str | None):
    """`app` as it is where no token is set, else behind it (`BearerOnly`)."""
    return app if token is None else BearerOnly(app, token)


def check_image_type(content_type: str) -> None:
    if reason := not_an_image(content_type):
        raise HTTPException(415, reason)


async def multipart_images(request: Request, names: tuple[str, ...]) -> list[tuple[str, bytes | str]]:
    """(name, bytes) of the multipart file fields called one of `names`, in order; for a part whose type is not
    an image's, why (`not_an_image`) in place of its bytes."""
    form = await request.form(max_files=1000, max_fields=100)
    images = []
    for name, value in form.multi_items():
        if name not in names:
            continue
        if isinstance(value, str):
            raise HTTPException(400, f"the field {name!r} must be a file, not text")
        images.append((name, not_an_image(value.content_type or "") or await value.read()))
    await form.close()
    return images
