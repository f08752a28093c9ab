"""perf_gate.workload: the plan is fixed, mixes what the profile says, and its bodies are valid HTTP."""

from __future__ import annotations

import asyncio
import base64
import io
import json

from ofa_ve.errors import ClientError
from ofa_ve.imaging import decode_image
from ofa_ve.settings import Settings
from perf_gate.profile import load_profile
from perf_gate.workload import BATCH_PATH, SINGLE_PATH, Call, build_plan
from PIL import Image
from starlette.requests import Request

# The service's default limits, so a bad image is judged as the service would judge it.
MAX_BYTES = Settings.model_fields["max_image_bytes"].default
MAX_PIXELS = Settings.model_fields["max_image_pixels"].default


def _form(body: bytes, content_type: str) -> dict:
    """What Starlette (the service's framework) parses out of a multipart body."""

    async def parse() -> dict:
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = {"type": "http", "method": "POST", "headers": [(b"content-type", content_type.encode())]}
        form = await Request(scope, receive).form()
        out = {}
        for key, value in form.multi_items():
            out[key] = await value.read() if hasattr(value, "read") else value
        await form.close()
        return out

    return asyncio.run(parse())


def _text_and_image(call: Call) -> tuple[str | None, bytes]:
    """The text (None when absent) and the image bytes a call sends, as JSON with base64 or as multipart."""
    if call.content_type == "application/json":
        body = json.loads(call.body)
        return body.get("text"), base64.b64decode(body["image_base64"])
    form = _form(call.body, call.content_type)
    return form.get("text"), form["image"]


def test_plan_is_identical_every_time() -> None:
    """Two plans from one profile are byte for byte equal: both builds and all rounds get the same calls."""
    profile = load_profile()
    first, second = build_plan(profile), build_plan(profile)
    assert list(first) == [s.name for s in profile.steps]
    for name in first:
        assert [c.body for c in first[name]] == [c.body for c in second[name]]
        assert len(first[name]) == profile.step(name).requests


def test_bad_share_of_calls_and_items() -> None:
    """round(bad_share * n) calls (or batch items) of each step expect a refusal."""
    profile = load_profile()
    plan = build_plan(profile)
    for step in profile.steps:
        calls = plan[step.name]
        if step.kind == "single":
            assert sum(not c.good for c in calls) == round(profile.workload.bad_share * step.requests)
            assert {c.path for c in calls} == {SINGLE_PATH}
        else:
            flags = [f for c in calls for f in c.items]
            assert len(flags) == step.requests * step.batch_items
            assert flags.count(False) == round(profile.workload.bad_share * len(flags))
            assert {c.path for c in calls} == {BATCH_PATH}


def test_single_calls_mix_json_and_multipart_with_real_images() -> None:
    """Single calls come as JSON with base64 and as multipart, with images in the profile's formats."""
    profile = load_profile()
    calls = build_plan(profile)["single-c16"]
    types = {c.content_type.split(";")[0] for c in calls}
    assert types == {"application/json", "multipart/form-data"}
    formats = set()
    for call in calls:
        if not call.good:
            continue
        text, image = _text_and_image(call)
        assert text is not None and text.strip()
        with Image.open(io.BytesIO(image)) as decoded:
            formats.add(decoded.format)
            decoded.load()
    assert formats <= {s.format for s in profile.workload.images}
    assert len(formats) >= 2


def test_bad_calls_are_really_bad() -> None:
    """Each refusal the plan expects has a cause: no text, an empty text, or bytes that are no whole image."""
    plan = build_plan(load_profile())
    bad = [c for calls in plan.values() for c in calls if not c.good and not c.items]
    assert bad
    for call in bad:
        text, image = _text_and_image(call)
        broken_text = text is None or not text.strip()
        # The service's own decoder is the judge: a bare PIL decode depends on the process-wide
        # LOAD_TRUNCATED_IMAGES, which an earlier ModelScope import in the same session switches on.
        try:
            decode_image(image, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS)
            broken_image = False
        except ClientError:
            broken_image = True
        assert broken_text or broken_image
