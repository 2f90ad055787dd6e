"""Evaluate a reader on SQuAD v1.1 dev, XQuAD-en and SQuAD 2.0 dev; writes a JSON report.

SQuAD v1.1 and XQuAD: the official EM/F1 of the best span (every question has an answer).
SQuAD 2.0: the reader's margin (best span score - no-answer score) decides between the span and
abstaining. The threshold is chosen on the calibration articles of :mod:`qa.training.splits` (the value
that maximises F1 there; before 0.4.0, on all even-numbered articles) and the scores are reported on the
held-out (odd-numbered) articles only.

Run: ``python -m qa.training.evaluate --model models/reader --out models/reader/eval.json``
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

from qa.answer import softmax
from qa.config import SHARED_DIR
from qa.evaluation import score
from qa.reader import Reader
from qa.training import add_bf16_option, use_bf16
from qa.training.splits import part_of

log = logging.getLogger(__name__)
QA_DATA = SHARED_DIR / "qa-data"


def _gold_rows(path: Path, limit: int | None, sample: int | None = None, seed: int = 0) -> list[dict]:
    """The questions of a SQuAD-format file: the first ``limit``, or a seeded random ``sample`` of them (in file
    order), or all."""
    rows = []
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    for a_i, article in enumerate(data):
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                golds = [] if qa.get("is_impossible") else [a["text"] for a in qa["answers"]]
                rows.append({"id": qa["id"], "question": qa["question"], "context": para["context"],
                             "golds": golds, "article": a_i})
    if sample and sample < len(rows):
        keep = sorted(random.Random(seed).sample(range(len(rows)), sample))
        rows = [rows[i] for i in keep]
    return rows[:limit] if limit else rows


def predict(reader: Reader, rows: list[dict], batch: int = 32) -> list[tuple[str, float, float]]:
    """(best span text, margin over no-answer, probability) per row; ("", -inf, 0) when no span was found.

    The probability is the best span's share of a softmax over the reader's 5 best spans and the no-answer
    score, as the engine computes an answer's confidence (:func:`qa.answer.build_answer`).
    """
    out: list[tuple[str, float, float]] = []
    started = time.time()
    for b in range(0, len(rows), batch):
        part = rows[b : b + batch]
        for reading in reader.read_many([(r["question"].strip(), [r["context"]]) for r in part], top_k=5):
            if reading.spans:
                prob = softmax([s.score for s in reading.spans] + [reading.no_answer_score])[0]
                out.append((reading.spans[0].text, reading.margin, prob))
            else:
                out.append(("", float("-inf"), 0.0))
        if (b // batch) % 20 == 0:
            log.info("%d/%d questions, %.1f q/s", len(out), len(rows), len(out) / (time.time() - started))
    return out


def squad_v1(reader: Reader, path: Path, limit: int | None, sample: int | None = None, seed: int = 0,
             predictions: list[dict] | None = None) -> dict:
    """EM and F1 of the best span; with ``predictions``, one record per question is appended to it."""
    rows = _gold_rows(path, limit, sample, seed)
    preds = predict(reader, rows)
    ems, f1s = zip(*(score(p, r["golds"]) for (p, _, _), r in zip(preds, rows)))
    if predictions is not None:
        predictions.extend({"set": path.stem, "id": r["id"], "prediction": p, "margin": m, "probability": prob,
                            "em": em, "f1": f1} for (p, m, prob), r, em, f1 in zip(preds, rows, ems, f1s))
    return {"questions": len(rows), "em": 100 * sum(ems) / len(rows), "f1": 100 * sum(f1s) / len(rows)}


def squad_v2(reader: Reader, path: Path, limit: int | None) -> dict:
    rows = _gold_rows(path, limit)
    preds = predict(reader, rows)
    calib = [(p, r) for p, r in zip(preds, rows) if part_of(r["article"]) == "calibration"]
    test = [(p, r) for p, r in zip(preds, rows) if part_of(r["article"]) == "heldout"]

    def f1_at(pairs, threshold: float) -> float:
        return sum(score(text if margin >= threshold else None, r["golds"])[1] for (text, margin, _), r in pairs)

    candidates = sorted({round(m, 2) for (_, m, _), _ in calib if m != float("-inf")})
    best = max(candidates, key=lambda t: f1_at(calib, t)) if candidates else 0.0
    has = [(p, r) for p, r in test if r["golds"]]
    no = [(p, r) for p, r in test if not r["golds"]]
    return {
        "threshold": best,
        "calibration_questions": len(calib),
        "test_questions": len(test),
        "f1": 100 * f1_at(test, best) / max(1, len(test)),
        "has_ans_f1": 100 * f1_at(has, best) / max(1, len(has)),
        "no_ans_accuracy": 100 * sum(m < best for (_, m, _), _ in no) / max(1, len(no)),
        "f1_without_abstention": 100 * f1_at(test, float("-inf")) / max(1, len(test)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/reader")
    parser.add_argument("--out", help="write the JSON report here")
    parser.add_argument("--sets", default="squad1,xquad,squad2", help="comma-separated: squad1, xquad, squad2")
    parser.add_argument("--limit", type=int, help="first N questions of each set (quick checks)")
    parser.add_argument("--sample", type=int, help="a seeded random sample of N questions of each set (learning "
                        "curves: the same N questions for every checkpoint)")
    parser.add_argument("--sample-seed", type=int, default=0)
    parser.add_argument("--tokenizer", help="take the tokenizer from this folder (for bare checkpoints)")
    parser.add_argument("--max-length", type=int, default=384)
    parser.add_argument("--stride", type=int, default=128)
    parser.add_argument("--token-spans", action="store_true",
                        help="let spans start or end inside a word (the decoding before 0.1.5)")
    parser.add_argument("--predictions", help="also write one JSON line per SQuAD v1.1 / XQuAD question here: id, "
                        "prediction, margin, probability, em, f1 (for bench/cascade.py)")
    add_bf16_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    reader = Reader.load(args.model, max_length=args.max_length, stride=args.stride, tokenizer=args.tokenizer,
                         whole_words=not args.token_spans, use_bf16=use_bf16(args))
    report: dict = {"model": args.model, "max_length": args.max_length, "stride": args.stride, "limit": args.limit,
                    "sample": args.sample, "sample_seed": args.sample_seed if args.sample else None,
                    "whole_words": not args.token_spans, "bf16": reader.use_bf16}
    sets = args.sets.split(",")
    started = time.time()
    predictions: list[dict] | None = [] if args.predictions else None
    if "squad1" in sets:
        report["squad_v1.1_dev"] = squad_v1(reader, QA_DATA / "squad-v1.1" / "dev-v1.1.json", args.limit,
                                             args.sample, args.sample_seed, predictions)
        log.info("SQuAD v1.1 dev: %s", report["squad_v1.1_dev"])
    if "xquad" in sets:
        report["xquad_en"] = squad_v1(reader, QA_DATA / "xquad-en" / "xquad.en.json", args.limit, args.sample,
                                       args.sample_seed, predictions)
        log.info("XQuAD-en: %s", report["xquad_en"])
    if "squad2" in sets:
        report["squad_v2.0_dev"] = squad_v2(reader, QA_DATA / "squad-v2.0" / "dev-v2.0.json", args.limit)
        log.info("SQuAD 2.0 dev: %s", report["squad_v2.0_dev"])
    report["seconds"] = round(time.time() - started, 1)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if predictions is not None:
        Path(args.predictions).write_text("".join(json.dumps(p) + "\n" for p in predictions), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
