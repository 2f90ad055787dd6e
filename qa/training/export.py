"""Ship a trained reader: float16 safetensors, tokenizer and training config, checked against float32.

The shipped reader is stored at half precision (half the bytes) and computed in float32. This command
writes the half-precision copy and reads a sample of XQuAD-en questions with both copies: it refuses to
ship when an answer changes, except where the float32 reader itself scores the two answers as a tie (within
``--tie`` logits, default 0.01: well below the rounding error of float16 weights), which it counts and reports.

A LoRA adapter (a folder with ``adapter_config.json``) is shipped as it is, float32 (a few MB): its
``adapter_config.json`` names the packaged base (``all-mpnet-base-v2``) instead of the trainer's cache path,
and the training config and history come along; ``--half`` stores it at float16 instead (half the bytes),
after the same answer check, both adapters merged into the base (``--check 0`` skips it).

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
from qa.reader import Reader, Reading

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


def compare_answers(full: list[Reading], half: list[Reading], tie: float) -> dict:
    """How the half-precision answers differ from the float32 ones.

    Args:
        full: the float32 readings, with several spans each (the alternatives the answer could flip to).
        half: the float16 readings of the same questions.
        tie: a changed answer counts as a tie when the float32 reader scores it within this many logits of
            its own best answer; otherwise it counts as changed (so does an answer float32 did not rank).
    Returns:
        ``{"checked": n, "changed": k, "ties": t}``.
    """
    changed = ties = 0
    for a, b in zip(full, half):
        best = a.spans[0] if a.spans else None
        text = b.spans[0].text if b.spans else None
        if (best.text if best else None) == text:
            continue
        alternative = next((s.score for s in a.spans if s.text == text), None) if best else None
        if alternative is not None and best.score - alternative <= tie:
            ties += 1
        else:
            changed += 1
    return {"checked": len(full), "changed": changed, "ties": ties}


def export(src: Path, dst: Path, check: int = 200, tie: float = 0.01) -> dict:
    """Write ``src`` at float16 into ``dst`` (replacing its weights) if the answers stay equal (ties aside).

    Returns:
        ``{"checked": n, "changed": k, "ties": t}`` (see :func:`compare_answers`); nothing is written when ``k > 0``.
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
    full = Reader.load(str(src), tokenizer=str(staging), use_bf16=False).read_many(items, top_k=20)
    half = Reader.load(str(staging), use_bf16=False).read_many(items, top_k=1)
    result = compare_answers(full, half, tie)
    if result["changed"]:
        shutil.rmtree(staging)
        raise SystemExit(f"{result['changed']} of {len(items)} answers change at float16 (and {result['ties']} "
                         "ties flip); not exported")
    if result["ties"]:
        log.info("%d of %d answers flip between float32 ties (within %g logits)", result["ties"], len(items), tie)
    for path in staging.iterdir():
        shutil.copy2(path, dst / path.name)
    shutil.rmtree(staging)
    return result


def export_adapter(src: Path, dst: Path, half: bool = False, check: int = 0, tie: float = 0.01) -> dict:
    """Copy the adapter in ``src`` into ``dst`` with a portable base name (see the module's docstring).

    Args:
        src: the trained adapter (float32).
        dst: the shipped reader folder.
        half: store the weights at float16.
        check: with ``half``, read this many XQuAD-en questions with the float32 and the float16 adapter (each
            merged into its base) and refuse when an answer changes, ties aside (as :func:`export`).
        tie: see :func:`compare_answers`.
    Returns:
        ``{"tensors": n, "bytes": size of the weights written, "dtype": ...}``, and with a check its
        ``checked``, ``changed`` and ``ties``.
    Raises:
        SystemExit: answers changed at float16; nothing is written.
    """
    import torch
    from safetensors.torch import load_file, save_file

    from qa.readers import ADAPTER_CONFIG, ADAPTER_WEIGHTS, base_key

    config = json.loads((src / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_key(str(config.get("base_model_name_or_path") or ""))
    weights = load_file(src / ADAPTER_WEIGHTS)
    if half:
        weights = {k: (v.half() if v.is_floating_point() else v) for k, v in weights.items()}
    staging = dst.with_name(dst.name + ".export")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in weights.items()}, staging / ADAPTER_WEIGHTS, metadata={"format": "pt"})
    (staging / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2), encoding="utf-8")
    for name in ("train_config.json", "history.jsonl"):
        for folder in (src, src.parent, src.parent.parent):
            if (folder / name).is_file():
                shutil.copy2(folder / name, staging / name)
                break
    result = {"tensors": len(weights), "bytes": (staging / ADAPTER_WEIGHTS).stat().st_size,
              "dtype": "float16" if half else str(next(iter(weights.values())).dtype).replace("torch.", "")}
    if half and check:
        items = sample_questions(check)
        full = Reader.load(str(src), use_bf16=False).read_many(items, top_k=20)
        halved = Reader.load(str(staging), use_bf16=False).read_many(items, top_k=1)
        result.update(compare_answers(full, halved, tie))
        if result["changed"]:
            shutil.rmtree(staging)
            raise SystemExit(f"{result['changed']} of {len(items)} answers change with the float16 adapter (and "
                             f"{result['ties']} ties flip); not exported")
    dst.mkdir(parents=True, exist_ok=True)
    for path in staging.iterdir():
        shutil.copy2(path, dst / path.name)
    shutil.rmtree(staging)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path, help="trained model folder (float32, save_pretrained)")
    parser.add_argument("dst", type=Path, help="the shipped reader folder, e.g. models/reader")
    parser.add_argument("--check", type=int, default=200, help="XQuAD questions whose answers must not change")
    parser.add_argument("--tie", type=float, default=0.01,
                        help="an answer that changes between two spans float32 scores within this many logits "
                             "is a tie, reported but allowed (default 0.01)")
    parser.add_argument("--half", action="store_true", help="an adapter: store it at float16 (default float32), "
                        "after the --check of its answers against the float32 adapter's")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    from qa.readers import is_adapter

    if is_adapter(args.src):
        print(json.dumps(export_adapter(args.src, args.dst, args.half, args.check, args.tie)))
        return 0
    args.dst.mkdir(parents=True, exist_ok=True)
    print(json.dumps(export(args.src, args.dst, args.check, args.tie)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
