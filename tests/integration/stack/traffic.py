"""Real requests to the ofa-ve API: single and batch entailments plus a few caller mistakes."""

from __future__ import annotations

import base64
import io

import httpx
from PIL import Image

SENTENCES = ["a dog is running on the grass", "there are two birds.", "the cat sits on a red sofa"]


def png_image(size: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, format="PNG")
    return out.getvalue()


def drive_traffic(base_url: str, rounds: int = 6) -> None:
    """Send successes over both endpoints and some 4xx, asserting each answer is the expected kind."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for i in range(rounds):
            image = png_image(64 + 32 * i, (40 * i % 256, 120, 200))
            text = SENTENCES[i % len(SENTENCES)]
            single = client.post("/v1/entailment", files={"image": ("x.png", image, "image/png")},
                                 data={"text": text})
            assert single.status_code == 200, single.text
            items = [{"image_base64": base64.b64encode(image).decode(), "text": s} for s in SENTENCES]
            batch = client.post("/v1/entailment/batch", json={"items": items})
            assert batch.status_code == 200, batch.text
        # Caller mistakes: a body that is not JSON, an image that is not one, and no text at all.
        bad = [
            client.post("/v1/entailment", content=b"{not json", headers={"content-type": "application/json"}),
            client.post("/v1/entailment", json={"image_base64": "bm90IGFuIGltYWdl", "text": "x"}),
            client.post("/v1/entailment", files={"image": ("x.png", png_image(32, (0, 0, 0)), "image/png")}),
        ]
        assert all(400 <= r.status_code < 500 for r in bad), [(r.status_code, r.text) for r in bad]
