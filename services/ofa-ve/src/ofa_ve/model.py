"""The OFA visual-entailment model behind ModelScope's pipeline, with our own batch collation.

ModelScope's list batching fails for OFA in traverse mode (`KeyError: 'decoder_prompts'`), so items
are preprocessed one by one with the pipeline's own preprocessor and collated here into one batch
for a single forward pass of the pipeline's model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from ofa_ve import accel
from ofa_ve.settings import Settings

log = logging.getLogger(__name__)

LABELS = {"yes": "YES", "no": "NO", "maybe": "MAYBE"}


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float


@dataclass(frozen=True)
class ModelDescription:
    """Label values of ofa_ve_model_info."""

    model: str
    revision: str
    device: str
    dtype: str


def _pipeline_input(image: Image.Image, text: str, premise: str | None) -> dict[str, Any]:
    # ModelScope's field for the premise is `text2`: its prompt then reads
    # 'can image and text1 "<premise>" imply text2 "<text>"?'.
    data: dict[str, Any] = {"image": image, "text": text}
    if premise:
        data["text2"] = premise
    return data


def resolve_device(requested: str, cuda_available: bool) -> str:
    """`auto` means CUDA when torch sees a GPU; asking for CUDA without one is a configuration error."""
    if requested == "auto":
        return "cuda" if cuda_available else "cpu"
    if requested == "cuda" and not cuda_available:
        raise RuntimeError("OFA_VE_DEVICE=cuda but torch sees no CUDA device")
    return requested


class OfaEntailmentModel:
    """Loads the pipeline; `prepare` turns one pair into a model sample, `predict` runs a batch of them."""

    def __init__(self, settings: Settings) -> None:
        import torch
        from modelscope.pipelines import pipeline
        from modelscope.preprocessors.ofa.utils.collate import collate_tokens
        from modelscope.utils.constant import Tasks

        if settings.model_is_local and not os.path.isdir(settings.model):
            # ModelScope would take a missing directory for a hub id and spend a while looking it up.
            raise FileNotFoundError(f"model directory {settings.model} does not exist")
        if settings.torch_threads:
            torch.set_num_threads(settings.torch_threads)
        self._torch = torch
        self._collate_tokens = collate_tokens
        device = resolve_device(settings.device, torch.cuda.is_available())
        kwargs: dict[str, Any] = {}
        if not settings.model_is_local and settings.model_revision:
            kwargs["model_revision"] = settings.model_revision
        if device == "cuda":
            # torch keeps TF32 off for float32 matmuls: on Ampere/Hopper that leaves tensor cores idle.
            log.info("matmul precision", extra={"setting": accel.configure_matmul_precision(
                torch, settings.matmul_precision)})
        ms_device = "gpu" if device == "cuda" else "cpu"
        self.pipeline = pipeline(Tasks.visual_entailment, model=settings.model, device=ms_device, **kwargs)
        self.pipeline.prepare_model()
        self.ofa = self.pipeline.model  # OfaForAllTasks
        dtype = "float32"
        if settings.fp16 and device == "cuda":
            self.use_half()
            dtype = "float16"
        self._dtype = next(self.ofa.model.parameters()).dtype
        self._device = next(self.ofa.model.parameters()).device
        self.task_preprocessor = self.pipeline.preprocessor.preprocess
        tokenizer = self.pipeline.preprocessor.tokenizer
        self._pad, self._eos = tokenizer.pad_token_id, tokenizer.eos_token_id
        revision = "local" if settings.model_is_local else (settings.model_revision or "default")
        self.description = ModelDescription(settings.model, revision, device, dtype)

    def use_half(self) -> None:
        """Float16 weights, with the float32 copies' memory released, and ModelScope's own path (used by
        reference()) fed half inputs: its preprocessor makes float32 images."""
        accel.to_half(self.ofa.model, self._torch)
        self._dtype = next(self.ofa.model.parameters()).dtype
        forward = self.pipeline.forward

        def half_forward(inputs: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return forward(accel.cast_floating(inputs, self._dtype), **kwargs)

        self.pipeline.forward = half_forward

    def prepare(self, image: Image.Image, text: str, premise: str | None) -> dict[str, Any]:
        """One model sample (tokenised prompt, resized image tensor); CPU work done outside the worker."""
        sample = self.task_preprocessor(_pipeline_input(image, text, premise))
        return {
            "source": sample["source"],
            "patch_image": sample["patch_image"],
            "patch_mask": sample["patch_mask"],
            "decoder_prompt": sample["decoder_prompt"].tolist(),
        }

    def collate(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Pads and stacks samples the way ModelScope's OFA collate does, minus its ragged-array bug."""
        torch = self._torch
        return {
            "nsentences": len(samples),
            "net_input": {
                "input_ids": self._collate_tokens(
                    [s["source"] for s in samples], self._pad, eos_idx=self._eos
                ),
                "patch_images": torch.stack([s["patch_image"] for s in samples]).to(self._dtype),
                "patch_masks": torch.cat([s["patch_mask"] for s in samples]),
            },
            # A list, not np.array: prompts differ in length and numpy 2 refuses ragged arrays.
            "decoder_prompts": [s["decoder_prompt"] for s in samples],
        }

    def infer(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One forward pass over a collated batch."""
        with self._torch.inference_mode():
            return self.ofa.forward(batch)

    @staticmethod
    def postprocess(output: dict[str, Any]) -> list[Prediction]:
        labels, scores = output["labels"], output["scores"]
        return [Prediction(LABELS.get(str(lab).strip().lower(), str(lab).upper()), float(sc))
                for lab, sc in zip(labels, scores, strict=True)]

    def reference(self, image: Image.Image, text: str, premise: str | None = None) -> Prediction:
        """ModelScope's own single-item path, for checking that our batching changes nothing."""
        out = self.pipeline(_pipeline_input(image, text, premise))
        return Prediction(LABELS[str(out["labels"]).strip().lower()], float(out["scores"]))
