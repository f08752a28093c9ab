"""Our collation over ModelScope's preprocessor and model gives the answers of ModelScope's own path."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from ofa_ve.model import OfaEntailmentModel
from ofa_ve.settings import Settings
from PIL import Image

from tests.support.service import ensure_tiny_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def model() -> OfaEntailmentModel:
    """The real pipeline on the tiny model, in-process."""
    return OfaEntailmentModel(Settings(model=str(ensure_tiny_model()), device="cpu", torch_threads=1))


def _pairs() -> list[tuple[Image.Image, str, str | None]]:
    rng = np.random.default_rng(1)
    texts = ["there are two birds.", "a dog", "a man is riding a horse on the beach at sunset", "cat"]
    premises = [None, "two birds sit on a branch", None, "a cat sits on a red sofa"]
    return [(Image.fromarray(rng.integers(0, 255, (60 + 25 * i, 90, 3), dtype=np.uint8)), t, p)
            for i, (t, p) in enumerate(zip(texts, premises, strict=True))]


def test_batch_equals_single_items_and_modelscope(model: OfaEntailmentModel) -> None:
    """A batch of pairs of different text lengths gives each pair's single-item answer and ModelScope's."""
    pairs = _pairs()
    batched = model.postprocess(model.infer(model.collate([model.prepare(*p) for p in pairs])))
    for pair, from_batch in zip(pairs, batched, strict=True):
        alone = model.postprocess(model.infer(model.collate([model.prepare(*pair)])))[0]
        with warnings.catch_warnings():
            # ModelScope's own path builds tensors from tensors; a UserWarning of theirs, not ours.
            warnings.filterwarnings("ignore", "To copy construct from a tensor", UserWarning)
            reference = model.reference(*pair)
        assert from_batch.label == alone.label == reference.label
        assert from_batch.score == pytest.approx(alone.score, abs=1e-5)
        assert from_batch.score == pytest.approx(reference.score, abs=1e-5)


def test_half_precision_reference_path_takes_float32_images(model: OfaEntailmentModel) -> None:
    """In float16, ModelScope's own path (reference()) used to feed its float32 images into half weights
    and fail; with use_half() it answers, and agrees with our batched path."""
    half = OfaEntailmentModel(Settings(model=str(ensure_tiny_model()), device="cpu", torch_threads=1))
    half.use_half()
    image, text, premise = _pairs()[0]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "To copy construct from a tensor", UserWarning)
        reference = half.reference(image, text, premise)
    batched = half.postprocess(half.infer(half.collate([half.prepare(image, text, premise)])))[0]
    full = model.postprocess(model.infer(model.collate([model.prepare(image, text, premise)])))[0]
    assert reference.label == batched.label
    assert reference.score == pytest.approx(batched.score, abs=1e-3)
    assert batched.score == pytest.approx(full.score, abs=2e-2)  # half precision, same answer
    assert next(half.ofa.model.parameters()).dtype == torch.float16


def test_description_of_a_local_model(model: OfaEntailmentModel) -> None:
    """A local directory is reported as revision 'local' on CPU in float32."""
    assert (model.description.revision, model.description.device, model.description.dtype) == (
        "local", "cpu", "float32")
