"""Builds a tiny, randomly initialised OFA visual-entailment model directory in ModelScope's format.

ModelScope's real pipeline loads it like the hub model, so tests, CI, benchmarks and a CPU demo run
the true code path without the 3 GB download. Usage: `ofa-ve-make-tiny-model OUT_DIR`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

# OFA's preprocessor always adds <code_0..8191> and <bin_0..999> to the tokenizer; the model's
# vocabulary must be exactly BPE + these, or traverse inference masks logits with the wrong size.
NUM_CODES = 8192
NUM_BINS = 1000
FORMAT_VERSION = 1  # bump when the directory layout changes, so cached copies get rebuilt

_CORPUS = [
    'does the image describe " {} "?',
    'can image and text1 " {} " imply text2 " {} "?',
    "yes no maybe", "there are two birds.", "a dog is running on the grass",
    "a man is riding a horse", "the cat sits on a red sofa",
    "a woman holds an umbrella in the rain", "two people are playing football",
]


def _write_tokenizer(out_dir: Path, bpe_vocab: int) -> int:
    from tokenizers import ByteLevelBPETokenizer

    tok = ByteLevelBPETokenizer()
    tok.train_from_iterator(
        _CORPUS * 4, vocab_size=bpe_vocab, min_frequency=1,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False,
    )
    tok.save_model(str(out_dir))
    vocab = json.loads((out_dir / "vocab.json").read_text())
    if [vocab[t] for t in ("<s>", "<pad>", "</s>", "<unk>")] != [0, 1, 2, 3]:
        raise RuntimeError("special token ids differ from OFAConfig's bos/pad/eos defaults")
    return len(vocab)


def build(out_dir: str | Path, *, d_model: int = 64, layers: int = 1, patch_image_size: int = 128,
          seed: int = 0) -> Path:
    """Writes the model directory (atomically: a half-built directory is never left at `out_dir`)."""
    import torch
    from modelscope.models.multi_modal.ofa import OFAModel
    from modelscope.models.multi_modal.ofa.configuration_ofa import OFAConfig

    target = Path(out_dir).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tiny-model-", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the model directory is meant to be shared read-only
    torch.manual_seed(seed)
    vocab_size = _write_tokenizer(tmp, 400) + NUM_CODES + NUM_BINS
    (tmp / "answer2label.json").write_text(json.dumps({"no": 0, "yes": 1, "maybe": 2}))
    configuration = {
        "framework": "pytorch",
        "task": "visual-entailment",
        "model": {
            "type": "ofa",
            "beam_search": {"beam_size": 3, "max_len_b": 16, "min_len": 1, "no_repeat_ngram_size": 0},
            "seed": 7,
            "max_src_length": 256,
            "language": "en",
            "gen_type": "traverse",
            # 'none' crashes in ModelScope's collate; OFA's SNLI-VE recipe uses prev_output.
            "prompt_type": "prev_output",
            "answer2label": "answer2label.json",
            "patch_image_size": patch_image_size,
            "max_image_size": patch_image_size,
            "imagenet_default_mean_and_std": False,
        },
        "pipeline": {"type": "visual-entailment"},
        "tiny_model_format": FORMAT_VERSION,
    }
    (tmp / "configuration.json").write_text(json.dumps(configuration, indent=2))
    cfg = OFAConfig(
        vocab_size=vocab_size, d_model=d_model,
        encoder_layers=layers, decoder_layers=layers,
        encoder_attention_heads=4, decoder_attention_heads=4,
        encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
        max_position_embeddings=1024,
        resnet_type="resnet18", resnet_model_path=None, dropout=0.0, use_ofasys=False,
        token_bucket_size=256,
        # Must cover patches per side and code_image_size/8; small keeps the file small.
        image_bucket_size=max(16, -(-patch_image_size // 16)),
    )
    model = OFAModel(cfg)
    model.eval()
    # Embeddings and the output projection share one tensor, which safetensors refuses.
    model.save_pretrained(str(tmp), safe_serialization=False)
    if target.exists():
        import shutil

        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def is_current(model_dir: str | Path) -> bool:
    """True when `model_dir` holds a complete tiny model of the current format."""
    path = Path(model_dir)
    try:
        conf = json.loads((path / "configuration.json").read_text())
    except (OSError, ValueError):
        return False
    return conf.get("tiny_model_format") == FORMAT_VERSION and (path / "pytorch_model.bin").is_file()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir")
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--patch-image-size", type=int, default=128)
    parser.add_argument("--force", action="store_true", help="rebuild even when a current model is there")
    args = parser.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(message)s")
    if is_current(args.out_dir) and not args.force:
        log.info("tiny model already current at %s", Path(args.out_dir).resolve())
        return 0
    path = build(
        args.out_dir, d_model=args.d_model, layers=args.layers, patch_image_size=args.patch_image_size
    )
    log.info("tiny OFA model written to %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
