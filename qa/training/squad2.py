"""SQuAD 2.0 as the product meets it: does the reader answer what the text says and refuse what it does not?

Two ways of reading one part of :mod:`qa.training.splits` (``heldout`` for every reported number,
``calibration`` for choosing thresholds and the cascade's cut):

- **engine**: the part's articles are indexed together (one source per article, chunked and embedded as any
  user's sources are) and each question goes through :class:`qa.assistant.Assistant`: retrieval, the
  configured reader (or the cascade), its calibrated threshold, citations. Nothing tells the engine which
  article a question is about.
- **gold**: one reader alone on the paragraph the question was written against, with its calibrated threshold
  (SQuAD 2.0's own setting).

Scores are SQuAD 2.0's official ones: EM/F1 with an abstention right only where there is no answer; HasAns F1
on the answerable questions; the share of unanswerable questions refused.

Run: ``qa eval --squad2`` (engine, default reader, 150 + 150 held-out questions), ``qa eval --squad2 --mode gold
--reader mpnet --answerable 200 --unanswerable 200``, or ``python -m qa.training.squad2 --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from qa.evaluation import score
from qa.training.splits import SQUAD2_DEV, Question, article_texts, load_part

log = logging.getLogger(__name__)
SEED = 2026
BATCH = 16


@dataclass(frozen=True)
class Prediction:
    """What the engine or a reader said to one question.

    Attributes:
        text: the answer, or None when it abstained.
        best: the best span whatever the threshold ("" when none was found).
        margin: best span score - no-answer score (-inf when no span was found).
        confidence: :attr:`qa.types.Answer.confidence` of the answer given (engine mode; the span's probability
            in gold mode).
        reader: the reader whose answer it is (with the cascade, the one that answered).
    """

    text: str | None
    best: str
    margin: float
    confidence: float
    reader: str = ""


def sample(questions: list[Question], answerable: int | None, unanswerable: int | None,
           seed: int = SEED) -> list[Question]:
    """A seeded sample of ``answerable`` + ``unanswerable`` questions (None: all of that kind), in file order."""
    rng = random.Random(seed)
    has = [q for q in questions if q.golds]
    no = [q for q in questions if not q.golds]
    keep = []
    for pool, n in ((has, answerable), (no, unanswerable)):
        keep.extend(pool if n is None or n >= len(pool) else rng.sample(pool, n))
    order = {q.qid: i for i, q in enumerate(questions)}
    return sorted(keep, key=lambda q: order[q.qid])


def part_sources(part: str, path: str | Path = SQUAD2_DEV) -> list:
    """One :class:`qa.types.Source` per article of ``part``: its paragraphs, blank-line separated."""
    from qa.types import Source

    return [Source.from_text("\n\n".join(paragraphs), title, f"squad-v2.0-dev#{a}:{title}")
            for a, (title, paragraphs) in article_texts(part, path).items()]


def part_index(part: str, embedder, chunk_tokens: int, overlap_tokens: int, path: str | Path = SQUAD2_DEV) -> Path:
    """The index of ``part``'s articles, built once and kept under the cache (keyed by data, embedder, chunking).

    Returns:
        The index directory, for :meth:`qa.assistant.Assistant.load`.
    """
    from qa import building, index as index_store
    from qa.base_models import cache_root, locked, sha256_file

    key = hashlib.sha256(f"{sha256_file(Path(path))}|{part}|{embedder.name}|{chunk_tokens}|{overlap_tokens}"
                         .encode()).hexdigest()[:16]
    dest = cache_root() / "squad2-indexes" / f"{part}-{key}"
    if (dest / "manifest.json").is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with locked(dest.parent / ".build.lock"):
        if not (dest / "manifest.json").is_file():
            log.info("indexing the %s articles of SQuAD 2.0 dev into %s (once)", part, dest)
            index_store.save(building.build(part_sources(part, path), embedder, chunk_tokens, overlap_tokens), dest)
    return dest


def margin_of(answer) -> tuple[str, float]:
    """The best span of an :class:`qa.types.Answer` and its margin over no answer, whatever the threshold.

    The engine's probabilities are a softmax over its best spans and the no-answer score, so the margin is
    ``log(p_best / p_no_answer)``.
    """
    if not answer.candidates:
        return "", -math.inf
    best = answer.candidates[0]
    no_answer = max(1e-12, 1.0 - sum(c.probability for c in answer.candidates))
    return best.text, math.log(max(best.probability, 1e-12) / no_answer)


def engine_predictions(assistant, questions: list[Question]) -> list[Prediction]:
    """Ask each question through the assistant (batched), as a user would: no history, no hint of its article."""
    out: list[Prediction] = []
    started = time.time()
    for b in range(0, len(questions), BATCH):
        for answer in assistant.ask_many([q.question for q in questions[b : b + BATCH]]):
            best, margin = margin_of(answer)
            out.append(Prediction(answer.text, best, margin, answer.confidence, answer.reader))
        log.info("%d/%d questions, %.1f q/s", len(out), len(questions), len(out) / (time.time() - started))
    return out


def gold_predictions(reader, questions: list[Question], threshold: float) -> list[Prediction]:
    """Read each question over its own paragraph alone; answer where the margin reaches ``threshold``."""
    from qa.answer import softmax

    out: list[Prediction] = []
    for b in range(0, len(questions), BATCH):
        part = questions[b : b + BATCH]
        for reading in reader.read_many([(q.question, [q.context]) for q in part], top_k=5):
            if not reading.spans:
                out.append(Prediction(None, "", -math.inf, 0.0, reader.name))
                continue
            prob = softmax([s.score for s in reading.spans] + [reading.no_answer_score])[0]
            best = reading.spans[0].text
            out.append(Prediction(best if reading.margin >= threshold else None, best, reading.margin, prob,
                                  reader.name))
    return out


def report(questions: list[Question], predictions: list[Prediction]) -> dict:
    """SQuAD 2.0's scores of ``predictions``: EM, F1, HasAns EM/F1, and the share of unanswerable ones refused."""
    scores = [score(p.text, list(q.golds)) for q, p in zip(questions, predictions)]
    has = [s for q, s in zip(questions, scores) if q.golds]
    no = [p.text is None for q, p in zip(questions, predictions) if not q.golds]
    n = max(1, len(scores))
    return {
        "questions": len(scores), "answerable": len(has), "unanswerable": len(no),
        "em": 100 * sum(s[0] for s in scores) / n, "f1": 100 * sum(s[1] for s in scores) / n,
        "has_ans_em": 100 * sum(s[0] for s in has) / max(1, len(has)),
        "has_ans_f1": 100 * sum(s[1] for s in has) / max(1, len(has)),
        "has_ans_answered": 100 * sum(p.text is not None for q, p in zip(questions, predictions) if q.golds)
        / max(1, len(has)),
        "unanswerable_refused": 100 * sum(no) / max(1, len(no)),
    }


def best_threshold(questions: list[Question], predictions: list[Prediction]) -> float:
    """The margin threshold that maximises SQuAD 2.0 F1 over ``predictions`` (ties: the highest, which refuses more).

    Each prediction's ``best`` span is given where its margin reaches the threshold, else it abstains.
    """
    f1s = [score(p.best, list(q.golds))[1] if p.best else 0.0 for q, p in zip(questions, predictions)]
    refuse = [0.0 if q.golds else 1.0 for q in questions]
    ranked = sorted(range(len(predictions)), key=lambda i: -predictions[i].margin)
    # Threshold just above everything: all refused. Lowering it past each margin answers that question.
    total = sum(refuse)
    best_total, best_t = total, math.inf
    for pos, i in enumerate(ranked):
        total += f1s[i] - refuse[i]
        m = predictions[i].margin
        if m == -math.inf:
            break
        if pos + 1 < len(ranked) and predictions[ranked[pos + 1]].margin == m:
            continue
        if total > best_total + 1e-9:
            best_total, best_t = total, m
    return round(best_t, 4) if best_t != math.inf else 1e6


def at_threshold(prediction: Prediction, threshold: float) -> Prediction:
    """``prediction`` as the engine gives it at ``threshold``: its best span where the margin reaches it, else none."""
    answer = prediction.best if prediction.best and prediction.margin >= threshold else None
    return dataclasses.replace(prediction, text=answer)


def early_exit(full: list[Prediction], first: list[Prediction], threshold: float,
               exit_margin: float) -> tuple[list[Prediction], float]:
    """The engine's predictions with early exit at ``exit_margin`` (:meth:`qa.reader.Reader.read_many`), from its
    predictions reading every passage (``full``) and reading only the best passage (``first``), both made without
    a threshold: the first passage's answer where its margin reaches ``exit_margin`` (and the threshold), else the
    full read's, held to ``threshold``.

    Returns:
        The predictions and the share of questions answered from their first passage.
    """
    if len(full) != len(first):
        raise ValueError("the two readings are not of the same questions")
    out, exited = [], 0
    for f, o in zip(full, first):
        if o.best and o.margin >= max(exit_margin, threshold):
            out.append(Prediction(o.best, o.best, o.margin, o.confidence, o.reader))
            exited += 1
        else:
            out.append(at_threshold(f, threshold))
    return out, exited / max(1, len(full))


def choose_exit(questions: list[Question], full: list[Prediction], first: list[Prediction], threshold: float,
                margins: list[float], tolerance: float = 0.1) -> tuple[float | None, list[dict]]:
    """The lowest early-exit margin of ``margins`` at which SQuAD 2.0 F1 stays within ``tolerance`` points of
    reading every passage (None when none does).

    Returns:
        The margin (or None) and, per margin, its F1, HasAns F1, share refused, share exited and answers changed.
    """
    base = [at_threshold(f, threshold) for f in full]
    base_f1 = report(questions, base)["f1"]
    rows = []
    for m in sorted(set(margins)):
        preds, exited = early_exit(full, first, threshold, m)
        r = report(questions, preds)
        rows.append({"exit_margin": m, "f1": round(r["f1"], 2), "f1_full_read": round(base_f1, 2),
                     "has_ans_f1": round(r["has_ans_f1"], 2), "unanswerable_refused": round(r["unanswerable_refused"], 2),
                     "exited": round(exited, 3), "changed": sum(a.text != b.text for a, b in zip(preds, base))})
    ok = [row["exit_margin"] for row in rows if row["f1"] >= round(base_f1, 2) - tolerance]
    return (min(ok) if ok else None), rows


def choose_screen(f1_by_margin: dict[float, float], tolerance: float = 0.1) -> float | None:
    """The highest screen margin (:attr:`qa.config.Settings.screen_margin`) whose SQuAD 2.0 F1 is at least the F1
    without screening (the ``-inf`` entry) minus ``tolerance`` points; None when no other margin is given or none
    keeps it. Pure function."""
    base = f1_by_margin[-math.inf]
    ok = [m for m, f1 in f1_by_margin.items() if m > -math.inf and f1 >= base - tolerance]
    return max(ok) if ok else None


def cascade(fast: list[Prediction], slow: list[Prediction], cut: float) -> tuple[list[Prediction], float]:
    """The cascade's predictions at ``cut`` from each reader's own, as :meth:`qa.assistant.Assistant.ask_many`
    decides (:func:`qa.assistant.needs_rereading`): the slow reader's where the fast one abstained or its
    confidence is under ``cut``.

    Returns:
        The predictions and the share of questions reread.
    """
    if len(fast) != len(slow):
        raise ValueError("the two readers' predictions are not for the same questions")
    reread = [f.text is None or f.confidence < cut for f in fast]
    return [s if r else f for f, s, r in zip(fast, slow, reread)], sum(reread) / max(1, len(fast))


def choose_cut(questions: list[Question], fast: list[Prediction], slow: list[Prediction],
               cuts: list[float]) -> tuple[float, list[dict]]:
    """The cut of ``cuts`` at which the cascade's SQuAD 2.0 F1 is highest (ties: the lowest, which rereads least).

    Returns:
        The cut and, per cut, its F1, HasAns F1, share of unanswerable refused and share reread.
    """
    rows = []
    for cut in sorted(cuts):
        preds, reread = cascade(fast, slow, cut)
        r = report(questions, preds)
        rows.append({"cut": cut, "f1": round(r["f1"], 2), "has_ans_f1": round(r["has_ans_f1"], 2),
                     "unanswerable_refused": round(r["unanswerable_refused"], 2), "reread": round(reread, 3)})
    best = max(rows, key=lambda row: (row["f1"], -row["cut"]))
    return best["cut"], rows


def run(mode: str, part: str, reader: str | None, answerable: int | None, unanswerable: int | None,
        seed: int = SEED, threshold: float | None = None, **settings) -> tuple[list[Question], list[Prediction], dict]:
    """Sample ``part``, read it in ``mode`` with ``reader`` (None: the configured default), and score it.

    Returns:
        The questions, their predictions and the report (with the settings that made it).
    """
    from qa.config import Settings

    questions = sample(load_part(part), answerable or None, unanswerable or None, seed)
    config = Settings.from_env(**({"reader": reader} if reader else {}), **settings,
                               **({"no_answer_threshold": threshold} if threshold is not None else {}))
    started = time.time()
    if mode == "engine":
        from qa.assistant import Assistant, shared_embedder

        embedder = shared_embedder(config.embedder)
        index_dir = part_index(part, embedder, config.chunk_tokens, config.chunk_overlap_tokens)
        assistant = Assistant.load(index_dir, **({"reader": reader} if reader else {}), **settings,
                                   **({"no_answer_threshold": threshold} if threshold is not None else {}))
        predictions = engine_predictions(assistant, questions)
        label = assistant.info()["reader_label"]
    elif mode == "gold":
        from qa.assistant import shared_reader
        from qa.readers import reader_label, reader_stages

        if len(reader_stages(config.reader)) > 1:
            raise ValueError("gold mode reads with one reader; the cascade is measured in engine mode")
        predictions = gold_predictions(shared_reader(config), questions, config.abstention_threshold())
        label = reader_label(config.reader)
    else:
        raise ValueError(f"mode must be engine or gold, not {mode!r}")
    result = {"mode": mode, "part": part, "reader": label, "sample_seed": seed,
              "threshold": config.abstention_threshold(), "bf16": config.use_bf16, **report(questions, predictions),
              "seconds": round(time.time() - started, 1)}
    return questions, predictions, result


def format_report(result: dict) -> str:
    """A few lines for people."""
    return (f"SQuAD 2.0 dev, {result['part']} articles, {result['mode']} ({result['reader']}): "
            f"{result['answerable']} answerable + {result['unanswerable']} unanswerable\n"
            f"EM {result['em']:.1f}  F1 {result['f1']:.1f}  HasAns F1 {result['has_ans_f1']:.1f}  "
            f"answerable answered {result['has_ans_answered']:.1f}%  unanswerable refused "
            f"{result['unanswerable_refused']:.1f}%  ({result['seconds']:.0f} s)")


def add_options(parser: argparse.ArgumentParser) -> None:
    """The options ``qa eval --squad2`` and ``python -m qa.training.squad2`` share."""
    parser.add_argument("--mode", choices=["engine", "gold"], default="engine",
                        help="engine: the part's articles indexed together, asked through the assistant (default); "
                             "gold: one reader on each question's own paragraph")
    parser.add_argument("--part", choices=["heldout", "calibration"], default="heldout",
                        help="which articles (qa.training.splits; default the held-out ones)")
    parser.add_argument("--answerable", type=int, default=150, help="answerable questions sampled (default 150; 0: all)")
    parser.add_argument("--unanswerable", type=int, default=150, help="unanswerable questions sampled (default 150; 0: all)")
    parser.add_argument("--sample-seed", type=int, default=SEED)
    parser.add_argument("--threshold", type=float, help="no-answer threshold instead of the reader's calibrated one")
    parser.add_argument("--predictions", help="also write one JSON line per question here")


def write_predictions(path: str | Path, questions: list[Question], predictions: list[Prediction]) -> None:
    """One JSON line per question: id, article, golds, answer, best span, margin, confidence, reader."""
    Path(path).write_text("".join(json.dumps({
        "id": q.qid, "article": q.article, "question": q.question, "golds": list(q.golds), "answer": p.text,
        "best": p.best, "margin": p.margin if p.margin != -math.inf else None, "confidence": p.confidence,
        "reader": p.reader}) + "\n" for q, p in zip(questions, predictions)), encoding="utf-8")


def read_predictions(path: str | Path) -> list[Prediction]:
    """The predictions :func:`write_predictions` wrote, in order."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        out.append(Prediction(r["answer"], r["best"], -math.inf if r["margin"] is None else r["margin"],
                              r["confidence"], r.get("reader", "")))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", help="QA_READER for this run (default: the configured one)")
    add_options(parser)
    parser.add_argument("--json", help="write the report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    questions, predictions, result = run(args.mode, args.part, args.reader, args.answerable, args.unanswerable,
                                         args.sample_seed, args.threshold)
    result["command"] = "python -m qa.training.squad2 " + " ".join(argv if argv is not None else sys.argv[1:])
    print(format_report(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if args.predictions:
        write_predictions(args.predictions, questions, predictions)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
