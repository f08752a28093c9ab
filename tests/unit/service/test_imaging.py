"""Validation and decoding of untrusted images and texts."""

from __future__ import annotations

import base64
import io

import pytest
from ofa_ve.errors import ClientError
from ofa_ve.imaging import check_text, decode_base64, decode_image, sniff_format
from PIL import Image

from tests.unit.service.conftest import png_bytes

LIMITS = {"max_bytes": 1_000_000, "max_pixels": 1_000_000}


def _code(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.code, exc.value.status_code


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_supported_formats_decode_to_rgb(fmt: str) -> None:
    """Each supported format decodes into an RGB image with its pixel count."""
    decoded = decode_image(png_bytes((40, 30), fmt), **LIMITS)
    assert decoded.image.mode == "RGB"
    assert decoded.image.size == (40, 30)
    assert decoded.pixels == 1200


def test_unknown_bytes_are_unsupported_type() -> None:
    """Bytes that are no known image format get 415 unsupported_image_type."""
    with pytest.raises(ClientError) as exc:
        decode_image(b"%PDF-1.7 not an image at all", **LIMITS)
    assert _code(exc) == ("unsupported_image_type", 415)


def test_tiff_is_refused_even_though_pil_reads_it() -> None:
    """Formats outside the allow-list are refused before PIL parses them."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="TIFF")
    with pytest.raises(ClientError) as exc:
        decode_image(buf.getvalue(), **LIMITS)
    assert exc.value.code == "unsupported_image_type"


def test_truncated_png_is_corrupt() -> None:
    """A PNG cut in half is reported as corrupt_image (422), not a server error."""
    data = png_bytes((200, 200))
    with pytest.raises(ClientError) as exc:
        decode_image(data[: len(data) // 2], **LIMITS)
    assert _code(exc) == ("corrupt_image", 422)


def test_garbage_after_magic_is_corrupt() -> None:
    """A valid PNG signature followed by garbage is corrupt_image."""
    with pytest.raises(ClientError) as exc:
        decode_image(b"\x89PNG\r\n\x1a\n" + b"\x00garbage" * 20, **LIMITS)
    assert exc.value.code == "corrupt_image"


def test_empty_image() -> None:
    """Zero bytes is empty_image."""
    with pytest.raises(ClientError) as exc:
        decode_image(b"", **LIMITS)
    assert exc.value.code == "empty_image"


def test_over_byte_limit() -> None:
    """An image over max_bytes is image_too_large (413) before any decoding."""
    data = png_bytes((64, 64))
    with pytest.raises(ClientError) as exc:
        decode_image(data, max_bytes=len(data) - 1, max_pixels=10**9)
    assert _code(exc) == ("image_too_large", 413)


def test_decompression_bomb_is_refused_by_header(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny file declaring a huge canvas is refused by the service's own limit, even with PIL's off."""
    buf = io.BytesIO()
    Image.new("1", (12_000, 12_000)).save(buf, format="PNG")  # 144 Mpx in a few KB
    data = buf.getvalue()
    assert len(data) < 100_000
    # Importing ModelScope's OFA preprocessors sets this process-wide: the service must not rely on it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with pytest.raises(ClientError) as exc:
        decode_image(data, max_bytes=1_000_000, max_pixels=25_000_000)
    assert _code(exc) == ("image_too_many_pixels", 413)


def test_pixel_limit_is_configurable() -> None:
    """An image just over max_pixels is refused, one at the limit passes."""
    data = png_bytes((100, 100))
    decode_image(data, max_bytes=10**6, max_pixels=10_000)
    with pytest.raises(ClientError) as exc:
        decode_image(data, max_bytes=10**6, max_pixels=9_999)
    assert exc.value.code == "image_too_many_pixels"


def test_sniff_format_webp_needs_riff_and_webp() -> None:
    """RIFF containers that are not WebP (e.g. WAV) are not taken for images."""
    assert sniff_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "WEBP"
    assert sniff_format(b"RIFF\x00\x00\x00\x00WAVEfmt ") is None


def test_base64_plain_and_data_url() -> None:
    """Plain base64 and a data: URL decode to the same bytes."""
    raw = png_bytes()
    b64 = base64.b64encode(raw).decode()
    assert decode_base64(b64, max_bytes=10**6) == raw
    assert decode_base64("data:image/png;base64," + b64, max_bytes=10**6) == raw


def test_base64_malformed() -> None:
    """Characters outside the base64 alphabet give invalid_base64 (400)."""
    with pytest.raises(ClientError) as exc:
        decode_base64("abc$%^", max_bytes=10**6)
    assert _code(exc) == ("invalid_base64", 400)


def test_base64_over_limit_refused_before_decoding() -> None:
    """Base64 longer than the byte limit allows is image_too_large."""
    with pytest.raises(ClientError) as exc:
        decode_base64("A" * 2000, max_bytes=1000)
    assert exc.value.code == "image_too_large"


@pytest.mark.parametrize(
    ("value", "code"),
    [(None, "invalid_request"), ("   ", "empty_text"), ("x" * 11, "text_too_long"), (5, "invalid_request")],
)
def test_text_errors(value: object, code: str) -> None:
    """Missing, blank, over-long and non-string texts each get their own code."""
    with pytest.raises(ClientError) as exc:
        check_text(value, field="text", max_chars=10)
    assert exc.value.code == code


def test_text_is_stripped_and_optional_premise_may_be_absent() -> None:
    """A valid text comes back stripped; an absent or blank optional premise is None."""
    assert check_text("  two birds ", field="text", max_chars=10) == "two birds"
    assert check_text(None, field="premise", max_chars=10, required=False) is None
    assert check_text("", field="premise", max_chars=10, required=False) is None


def test_truncated_png_is_corrupt_even_if_pil_was_told_to_accept_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """ModelScope sets PIL's LOAD_TRUNCATED_IMAGES on import; truncated uploads must still be refused."""
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = png_bytes((400, 300))
    with pytest.raises(ClientError) as exc:
        decode_image(data[:300], **LIMITS)
    assert exc.value.code == "corrupt_image"
