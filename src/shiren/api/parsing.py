"""Reading request bodies that FastAPI's own body parameters cannot describe: a JSON body *or*
a multipart form (a ``meta`` JSON part beside file parts), frame uploads, and base64 images.

A body over the size cap never gets here (:class:`shiren.api.deps.BodyLimit`); a ``meta`` that
does not match its model is the same 422 ``input.invalid`` as any schema error; everything else
unusable is a typed 400.  :func:`request_body` publishes what these parsers accept.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from shiren.api.models import Strict
from shiren.errors import ErrorCode, InputError

MAX_FRAMES = 900
MAX_META_BYTES = 64 * 1024
MULTIPART = "multipart/form-data"
Body = TypeVar("Body", bound=BaseModel)


class FramesMeta(Strict):
    """The ``meta`` part of a capture upload: the session's nonce, each frame's time and,
    optionally, the camera's label."""

    nonce: str = Field(min_length=1, max_length=128)
    t_ms: list[float] = Field(min_length=1, max_length=MAX_FRAMES)
    camera_label: str | None = Field(
        default=None,
        max_length=256,
        description="The camera's name as the browser reports it (MediaStreamTrack.label); "
        "optional, a weak signal of the injection check only, never stored",
    )


def decode_base64(text: str, field: str) -> bytes:
    """The bytes of a base64 image field (whitespace ignored, a ``data:…;base64,`` prefix
    allowed); ``input.invalid`` naming ``field`` when it is not base64."""
    cleaned = "".join(text.split())
    if cleaned.startswith("data:"):
        cleaned = cleaned.partition(",")[2]
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{field} is not valid base64", detail={"field": field}) from None


def decode_optional(text: str | None, field: str) -> bytes | None:
    return None if text is None else decode_base64(text, field)


def validated(model: type[Body], raw: str | bytes) -> Body:
    """``raw`` JSON as ``model``; a mismatch is the app's 422 ``input.invalid``."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


async def read_upload(part: object, what: str) -> bytes:
    if not isinstance(part, UploadFile):
        raise InputError(f"{what} must be a file part", detail={"field": what})
    return await part.read()


def _is_multipart(request: Request) -> bool:
    return request.headers.get("content-type", "").startswith(MULTIPART)


def _meta_of(form: Any) -> str:
    meta = form.get("meta")
    if not isinstance(meta, str):
        raise InputError("a 'meta' JSON part is required", detail={"field": "meta"})
    return meta


async def json_or_multipart(
    request: Request, model: type[Body], *, file_field: str
) -> tuple[Body, bytes]:
    """A JSON body, or a multipart form with the same JSON as its ``meta`` part and a file
    part ``file_field`` (whose bytes come back; ``b""`` for a JSON request)."""
    if not _is_multipart(request):
        return validated(model, await request.body()), b""
    form = await request.form(max_files=2, max_fields=4, max_part_size=MAX_META_BYTES)
    raw_meta = _meta_of(form)
    data = await read_upload(form.get(file_field), file_field)
    return validated(model, raw_meta), data


async def frames_input(request: Request) -> tuple[FramesMeta, list[bytes]]:
    """The ``meta`` part and the frame files of a multipart capture upload."""
    if not _is_multipart(request):
        raise InputError("frames must be sent as multipart/form-data")
    form = await request.form(max_files=MAX_FRAMES, max_fields=4, max_part_size=MAX_META_BYTES * 8)
    meta = validated(FramesMeta, _meta_of(form))
    blobs = [await read_upload(part, "frames") for part in form.getlist("frames")]
    if not blobs:
        raise InputError("no frames were sent", code=ErrorCode.FRAMES_EMPTY)
    return meta, blobs


async def card_input(request: Request, max_part_bytes: int) -> tuple[bytes, bytes | None]:
    """The ``front`` (and optional ``back``) photos of a multipart card upload."""
    if not _is_multipart(request):
        raise InputError("the card must be sent as multipart/form-data")
    form = await request.form(max_files=2, max_fields=2, max_part_size=max_part_bytes)
    fronts, backs = form.getlist("front"), form.getlist("back")
    if len(fronts) != 1 or len(backs) > 1:
        raise InputError(
            "send one 'front' file part and at most one 'back'", detail={"field": "front"}
        )
    front = await read_upload(fronts[0], "front")
    back = await read_upload(backs[0], "back") if backs else None
    return front, back or None


async def recording_input(request: Request, max_bytes: int) -> tuple[str, bytes, str]:
    """The ``nonce``, ``video`` and optional ``lang`` (the digits' language of a read-the-digits
    answer: zh-CN or en) of a multipart recording upload."""
    if not _is_multipart(request):
        raise InputError("the recording must be sent as multipart/form-data")
    form = await request.form(max_files=1, max_fields=2, max_part_size=max_bytes)
    nonce, videos, lang = form.get("nonce"), form.getlist("video"), form.get("lang", "zh-CN")
    if lang not in ("zh-CN", "en"):
        raise InputError("'lang' must be zh-CN or en", detail={"field": "lang"})
    if not isinstance(nonce, str) or not 16 <= len(nonce) <= 128 or not nonce.isalnum():
        raise InputError("'nonce' must be the session's nonce", detail={"field": "nonce"})
    if len(videos) != 1:
        raise InputError("send one 'video' file part", detail={"field": "video"})
    return nonce, await read_upload(videos[0], "video"), str(lang)


FORM_MODELS: dict[str, type[BaseModel]] = {}
"""The models :func:`request_body` published (``shiren.api.openapi_doc`` adds them to the
document's components: FastAPI only knows the models of its own body parameters)."""


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def request_body(
    meta: type[BaseModel],
    files: dict[str, str],
    *,
    json: type[BaseModel] | None = None,
    description: str = "",
) -> dict[str, Any]:
    """The ``openapi_extra`` of a route read by these parsers: the ``meta`` model as the
    ``meta`` part of a form beside the ``files`` (``name → "one"`` or ``"many"``), and the
    ``json`` model of the same request sent as JSON (when it may be)."""
    FORM_MODELS[meta.__name__] = meta
    binary = {"type": "string", "format": "binary"}
    parts: dict[str, Any] = {"meta": _ref(meta.__name__)}
    for name, count in files.items():
        parts[name] = (
            {"type": "array", "items": binary, "minItems": 1} if count == "many" else binary
        )
    schema = {
        "type": "object",
        "properties": parts,
        "required": ["meta", *files],
        "additionalProperties": False,  # other parts: at most a few, and ignored
    }
    form = {
        "schema": schema,
        "encoding": {"meta": {"contentType": "application/json"}},
    }
    content: dict[str, Any] = {MULTIPART: form}
    if json is not None:
        FORM_MODELS[json.__name__] = json
        content = {"application/json": {"schema": _ref(json.__name__)}, **content}
    body: dict[str, Any] = {"required": True, "content": content}
    if description:
        body["description"] = description
    return {"requestBody": body}


__all__ = [
    "FORM_MODELS",
    "MAX_FRAMES",
    "MAX_META_BYTES",
    "FramesMeta",
    "decode_base64",
    "decode_optional",
    "frames_input",
    "json_or_multipart",
    "read_upload",
    "request_body",
    "validated",
]
