"""Gradio UI at /ui: same validation and inference path as the API, counted as endpoint="ui"."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import Any

import gradio as gr
from fastapi import FastAPI

from ofa_ve import context
from ofa_ve.api import Tracker
from ofa_ve.context import RequestContext
from ofa_ve.errors import ClientError, ServiceError
from ofa_ve.imaging import check_image_bytes, check_text
from ofa_ve.logging_setup import accept_request_id, request_id_var
from ofa_ve.service import EntailmentService, Pair
from ofa_ve.settings import Settings

log = logging.getLogger(__name__)


class UiHandler:
    """The function behind the Submit button; returns (label, score, error text)."""

    def __init__(self, settings: Settings, tracker: Tracker, service: EntailmentService) -> None:
        self.settings = settings
        self.tracker = tracker
        self.service = service

    async def __call__(
        self, image_path: str | None, text: str, premise: str, request_id: str | None = None
    ) -> tuple[str, float | None, str]:
        # gradio runs this from its own queue, outside the HTTP request's task: a context of its own.
        ctx = RequestContext(accept_request_id(request_id), time.perf_counter())
        request_id_var.set(ctx.request_id)
        token = context.activate(ctx)
        self.tracker.begin("ui", ctx)
        status, error = 200, None
        try:
            result = await self._predict(image_path, text, premise)
            return result["label"], round(float(result["score"]), 4), ""
        except ServiceError as exc:
            status, error = exc.status_code, exc
            return "", None, f"{exc.code}: {exc.message}"
        except Exception as exc:
            cause = type(exc).__name__
            status, error = 500, ServiceError("internal error", cause=cause)
            log.exception("unhandled error", extra={"endpoint": "ui", "error_type": "internal_error",
                                                    "cause": cause})
            return "", None, "internal_error: internal error"
        finally:
            self.tracker.end(ctx, status, error)
            context.deactivate(token)

    def _read_image(self, image_path: str) -> bytes:
        return Path(image_path).read_bytes()

    async def _predict(self, image_path: str | None, text: str, premise: str) -> dict[str, Any]:
        if not image_path:
            raise ClientError("upload an image", code="invalid_request", status_code=422)
        size = await asyncio.to_thread(os.path.getsize, image_path)
        check_image_bytes(size, self.settings.max_image_bytes)
        checked = check_text(text, field="text", max_chars=self.settings.max_text_chars)
        prem = check_text(premise, field="premise", max_chars=self.settings.max_text_chars, required=False)
        assert checked is not None
        with self.service.admit(1, size):
            image = await asyncio.to_thread(self._read_image, image_path)
            pair = Pair(image=image, text=checked, premise=prem)
            del image
            return await self.service.infer(pair, self.service.deadline())


def model_status(service: EntailmentService) -> str:
    """One markdown line saying what the replica is doing (shown above the form, refreshed every 2 s)."""
    st = service.engine.status()
    if st.state == "ready":
        return "**Model: ready.**"
    note = ""
    if st.state == "downloading":
        note = " The first start fetches the weights once; they are kept in the `models` volume."
    elif st.state == "failed":
        note = " Requests get 503 until a retry succeeds."
    else:
        note = " Requests get 503 until the model is ready."
    return f"**Model: {st.activity}.**{note}"


def mount_ui(app: FastAPI, settings: Settings, tracker: Tracker, service: EntailmentService) -> None:
    """Builds the Blocks and mounts them at /ui."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home from a server
    handler = UiHandler(settings, tracker, service)

    # gradio decides async-vs-sync by inspecting a function, so it needs a real coroutine function.
    # gradio fills a `gr.Request` parameter with the HTTP request that queued the event.
    async def predict(
        image_path: str | None, text: str, premise: str, request: gr.Request
    ) -> tuple[str, float | None, str]:
        return await handler(image_path, text, premise, request.headers.get("x-request-id"))

    # Uploads land in gradio's cache directory: delete them after an hour so disk use stays bounded.
    with gr.Blocks(title="OFA visual entailment", delete_cache=(600, 3600)) as blocks:
        gr.Markdown("## OFA visual entailment\nDoes the image (and optional premise) entail the sentence?")
        # Downloading n % of m GB, loading, warming up, failed: why; until it says ready.
        status = gr.Markdown(lambda: model_status(service), elem_id="model-status")
        gr.Timer(2.0).tick(lambda: model_status(service), outputs=status, show_progress="hidden",
                           api_visibility="private", queue=False)
        with gr.Row():
            # A file, not gr.Image: the service checks the original bytes (type, size, pixel bombs)
            # instead of whatever gradio would re-encode.
            image = gr.File(label="Image", file_types=["image"], type="filepath", elem_id="image")
            with gr.Column():
                text = gr.Textbox(label="Sentence (hypothesis)", elem_id="text")
                premise = gr.Textbox(label="Premise (optional)", elem_id="premise")
                submit = gr.Button("Check", variant="primary", elem_id="submit")
        with gr.Row():
            label = gr.Textbox(label="Label", interactive=False, elem_id="label")
            score = gr.Number(label="Score", interactive=False, elem_id="score")
            error = gr.Textbox(label="Error", interactive=False, elem_id="error")
        # Our own bounded queue sheds load; gradio's default of one at a time would serialise users.
        submit.click(predict, inputs=[image, text, premise], outputs=[label, score, error],
                     concurrency_limit=None, api_name="predict")
    gr.mount_gradio_app(app, blocks, path="/ui", max_file_size=settings.max_image_bytes, footer_links=[])
