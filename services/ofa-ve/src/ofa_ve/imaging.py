"""Validation and decoding of untrusted images and texts; every failure is a ClientError with its own code."""

from __future__ import annotations

import base64
import binascii
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageFile, UnidentifiedImageError

from ofa_ve.errors import ClientError

# Magic numbers of the formats accepted; anything else is refused before PIL sees it.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
)
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP")


@dataclass(frozen=True)
class DecodedImage:
    """An RGB image that passed every check, with the numbers the metrics need."""

    image: Image.Image
    size_bytes: int
    pixels: int


def sniff_format(data: bytes) -> str | None:
    """The image format named by the leading bytes, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in _SIGNATURES:
        if data.startswith(magic):
            return name
    return None


def check_image_bytes(size: int, max_bytes: int) -> None:
    """Refuses an empty image or one over the byte limit."""
    if size == 0:
        raise ClientError("image is empty", code="empty_image", status_code=422)
    if size > max_bytes:
        raise ClientError(
            f"image is {size} bytes, over the limit of {max_bytes}", code="image_too_large", status_code=413
        )


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> DecodedImage:
    """Checks and decodes an encoded image into RGB, refusing bombs before any pixel is decoded."""
    check_image_bytes(len(data), max_bytes)
    fmt = sniff_format(data)
    if fmt is None:
        raise ClientError(
            f"unsupported image type; send one of {', '.join(SUPPORTED_FORMATS)}",
            code="unsupported_image_type", status_code=415,
        )
    # Importing ModelScope's OFA preprocessors sets PIL's process-wide LOAD_TRUNCATED_IMAGES, which
    # would turn a truncated upload into a half-grey image; nothing in this service wants that.
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    try:
        with warnings.catch_warnings():
            # PIL warns (and only raises past twice its own limit) on huge images: refuse them all. That
            # limit is process-wide and ModelScope switches it off: the max_pixels check is the real guard.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=[fmt])
            width, height = image.size
            if width * height > max_pixels:
                raise ClientError(
                    f"image is {width}x{height} = {width * height} pixels, over the limit of {max_pixels}",
                    code="image_too_many_pixels", status_code=413,
                )
            image.load()
            rgb = image.convert("RGB")
    except ClientError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ClientError(
            f"image has too many pixels (limit {max_pixels})", code="image_too_many_pixels", status_code=413
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ClientError(
            f"image is corrupt or truncated ({fmt}): {exc}", code="corrupt_image", status_code=422
        ) from exc
    return DecodedImage(image=rgb, size_bytes=len(data), pixels=width * height)


def normalize_base64(value: str, *, max_bytes: int) -> str:
    """Base64 text without a `data:` URL prefix or whitespace, refused (413) when it would decode to more
    than `max_bytes`; cheap, so a request is refused before any decoding."""
    if value.startswith("data:") and "," in value:
        value = value.split(",", 1)[1]
    value = "".join(value.split())
    if len(value) > (max_bytes + 2) // 3 * 4:
        raise ClientError(
            f"image is over the limit of {max_bytes} bytes", code="image_too_large", status_code=413
        )
    return value


def b64decode(value: str) -> bytes:
    """Strict standard base64 decoding; 400 invalid_base64 on anything else."""
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ClientError(f"image_base64 is not valid base64: {exc}", code="invalid_base64") from exc


def decode_base64(value: str, *, max_bytes: int) -> bytes:
    """Decodes standard base64 (a `data:` URL prefix is allowed), refusing oversize input before decoding."""
    return b64decode(normalize_base64(value, max_bytes=max_bytes))


def check_text(value: object, *, field: str, max_chars: int, required: bool = True) -> str | None:
    """A stripped non-empty sentence within the length limit (None for an absent optional field)."""
    if value is None or (not required and isinstance(value, str) and not value.strip()):
        if required:
            raise ClientError(f"missing field {field!r}", code="invalid_request", status_code=422)
        return None
    if not isinstance(value, str):
        raise ClientError(f"field {field!r} must be a string", code="invalid_request", status_code=422)
    text = value.strip()
    if not text:
        raise ClientError(f"field {field!r} is empty", code="empty_text", status_code=422)
    if len(text) > max_chars:
        raise ClientError(
            f"field {field!r} has {len(text)} characters, over the limit of {max_chars}",
            code="text_too_long", status_code=422,
        )
    check_encodable(text, field=field)
    return text


def check_encodable(text: str, *, field: str) -> None:
    """Refuses text the tokenizer cannot encode: JSON's "\\ud800" (a lone surrogate) is valid JSON and a
    valid Python str, but not UTF-8, and the BART tokenizer raises UnicodeEncodeError on it."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ClientError(
            f"field {field!r} cannot be encoded as UTF-8 at character {exc.start} "
            f"({exc.reason}); send valid Unicode text",
            code="unencodable_text", status_code=422,
        ) from None
