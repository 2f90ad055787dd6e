"""Ship a trained reader: float16 safetensors, tokenizer and training config, checked against float32.

The shipped reader is stored at half precision (half the bytes) and computed in float32. This command
writes the half-precision copy and reads a sample of XQuAD-en questions with both copies: it refuses to
ship when an answer changes.

Run: ``python -m qa.training.export runs/reader-s2/final models/reader [--check 200]``
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from qa.config import SHARED_DIR
from qa.reader import Reader

log = logging.getLogger(__name__)
XQUAD = SHARED_DIR / "qa-data" / "xquad-en" / "xquad.en.json"
KEEP = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "train_config.json")


def sample_questions(n: int) -> list[tuple[str, list[str]]]:
    """The first ``n`` XQuAD-en questions with their paragraphs."""
    out = []
    for article in json.loads(XQUAD.read_text(encoding="utf-8"))["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                out.append((qa["question"], [para["context"]]))
    return out[:n]


def export(src: Path, dst: Path, check: int = 200) -> dict:
    """Write ``src`` at float16 into ``dst`` (replacing its weights) if the answers stay equal.

    Returns:
        ``{"checked": n, "changed": k}``; nothing is written when ``k > 0``.
    Raises:
        SystemExit: answers changed.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(src, use_safetensors=True, dtype=torch.float32)
    staging = dst.with_name(dst.name + ".export")
    shutil.rmtree(staging, ignore_errors=True)
    model.half().save_pretrained(staging, safe_serialization=True)
    for name in KEEP:
        for folder in (src, src.parent, dst):
            if (folder / name).is_file():
                shutil.copy2(folder / name, staging / name)
                break
    items = sample_questions(check)
    full = Reader.load(str(src), tokenizer=str(staging)).read_many(items, top_k=1)
    half = Reader.load(str(staging)).read_many(items, top_k=1)
    changed = sum((a.spans[0].text if a.spans else None) != (b.spans[0].text if b.spans else None)
                  for a, b in zip(full, half))
    if changed:
        shutil.rmtree(staging)
        raise SystemExit(f"{changed} of {len(items)} answers change at float16; not exported")
    for path in staging.iterdir():
        shutil.copy2(path, dst / path.name)
    shutil.rmtree(staging)
    return {"checked": len(items), "changed": changed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="trained model folder (float32, save_pretrained)")
    parser.add_argument("dst", type=Path, help="the shipped reader folder, e.g. models/reader")
    parser.add_argument("--check", type=int, default=200, help="XQuAD questions whose answers must not change")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    args.dst.mkdir(parents=True, exist_ok=True)
    print(json.dumps(export(args.src, args.dst, args.check)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
