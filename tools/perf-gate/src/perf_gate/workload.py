"""The fixed request plan of a profile: the same bytes, in the same order, for both builds and every round.

Every body is encoded once up front (multipart too), so the load generator spends as little CPU as it
can on the runner the services share, and spends the same on both builds.
"""

from __future__ import annotations

import base64
import io
import json
import random
from dataclasses import dataclass
from typing import Any

from PIL import Image

from perf_gate.profile import ImageSpec, Profile, Step

SINGLE_PATH = "/v1/entailment"
BATCH_PATH = "/v1/entailment/batch"
BAD_KINDS = ("not_an_image", "truncated_image", "empty_text", "missing_text")
_VARIANTS = 2  # distinct images per image spec
_VOCABULARY = (
    "a man woman child dog cat bird horse car bus bike red blue green white black small large old young "
    "two three is are sits stands runs walks holds rides on in near under beside the of with and wearing "
    "shirt hat street park beach table sofa grass water snow field building window door road tree flower"
).split()


@dataclass(frozen=True)
class Call:
    """One HTTP call of the plan and what a correct service answers to it."""

    path: str
    body: bytes
    content_type: str
    good: bool  # single call: True = expect 200, False = expect a 4xx
    items: tuple[bool, ...] = ()  # batch call: per item, True = expect an answer, False = an error

    @property
    def outcomes(self) -> int:
        """How many checked outcomes the call yields (one, or one per batch item)."""
        return len(self.items) or 1


@dataclass(frozen=True)
class Pair:
    image: bytes
    image_format: str
    text: str | None
    premise: str | None


def make_image(spec: ImageSpec, rng: random.Random) -> bytes:
    """A seeded image that compresses like a photo: smooth blobs from upscaled noise, in the spec's format."""
    small = (max(1, spec.width // 16), max(1, spec.height // 16))
    noise = Image.frombytes("RGB", small, rng.randbytes(small[0] * small[1] * 3))
    image = noise.resize((spec.width, spec.height), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    image.save(buf, format=spec.format, **({"quality": 85} if spec.format in ("JPEG", "WEBP") else {}))
    return buf.getvalue()


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_VOCABULARY) for _ in range(words))


class PlanBuilder:
    """Draws calls from the profile's mix with one seeded generator per step."""

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        rng = random.Random(f"{profile.seed}:images")  # noqa: S311 - a reproducible workload, no secret
        self.images = [
            (spec, [make_image(spec, rng) for _ in range(_VARIANTS)]) for spec in profile.workload.images
        ]
        self.jpeg = make_image(ImageSpec(width=64, height=48, format="JPEG", weight=1), rng)

    def pair(self, rng: random.Random, bad_kind: str | None) -> Pair:
        w = self.profile.workload
        spec, variants = rng.choices(self.images, weights=[s.weight for s, _ in self.images])[0]
        image = rng.choice(variants)
        words = rng.choices(w.texts, weights=[t.weight for t in w.texts])[0].words
        text: str | None = _sentence(rng, words)
        premise = _sentence(rng, 6) if rng.random() < w.premise_share else None
        fmt = spec.format
        if bad_kind == "not_an_image":
            image, fmt = b"perf-gate: these bytes are not an image. " * 8, "JPEG"
        elif bad_kind == "truncated_image":
            image, fmt = self.jpeg[: len(self.jpeg) * 2 // 3], "JPEG"
        elif bad_kind == "empty_text":
            text = "   "
        elif bad_kind == "missing_text":
            text = None
        return Pair(image, fmt, text, premise)

    def _bad_flags(self, rng: random.Random, count: int) -> list[str | None]:
        bad = round(self.profile.workload.bad_share * count)
        flags: list[str | None] = [BAD_KINDS[i % len(BAD_KINDS)] for i in range(bad)] + [None] * (count - bad)
        rng.shuffle(flags)
        return flags

    def step_calls(self, step: Step) -> list[Call]:
        rng = random.Random(f"{self.profile.seed}:{step.name}")  # noqa: S311 - reproducible, no secret
        if step.kind == "single":
            calls = []
            for bad in self._bad_flags(rng, step.requests):
                pair = self.pair(rng, bad)
                if rng.random() < self.profile.workload.multipart_share:
                    body, ctype = multipart_body(pair, rng)
                else:
                    body, ctype = json.dumps(_json_item(pair)).encode(), "application/json"
                calls.append(Call(SINGLE_PATH, body, ctype, good=bad is None))
            return calls
        flags = self._bad_flags(rng, step.requests * step.batch_items)
        calls = []
        for i in range(step.requests):
            chunk = flags[i * step.batch_items:(i + 1) * step.batch_items]
            items = [_json_item(self.pair(rng, bad)) for bad in chunk]
            body = json.dumps({"items": items}).encode()
            calls.append(Call(BATCH_PATH, body, "application/json", good=True,
                              items=tuple(bad is None for bad in chunk)))
        return calls


def _json_item(pair: Pair) -> dict[str, Any]:
    item: dict[str, Any] = {"image_base64": base64.b64encode(pair.image).decode()}
    if pair.text is not None:
        item["text"] = pair.text
    if pair.premise is not None:
        item["premise"] = pair.premise
    return item


def multipart_body(pair: Pair, rng: random.Random) -> tuple[bytes, str]:
    """A multipart/form-data body with the image as a file part, and its content type."""
    boundary = f"perf-gate-{rng.getrandbits(64):016x}"
    ext = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[pair.image_format]
    parts = [
        (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="image.{ext}"\r\n'
         f"Content-Type: image/{ext.replace('jpg', 'jpeg')}\r\n\r\n").encode() + pair.image + b"\r\n"
    ]
    for name, value in (("text", pair.text), ("premise", pair.premise)):
        if value is not None:
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def build_plan(profile: Profile) -> dict[str, list[Call]]:
    """Every step's calls, by step name, in the order they are sent."""
    builder = PlanBuilder(profile)
    return {step.name: builder.step_calls(step) for step in profile.steps}
