"""Calibrate the engine's no-answer threshold on held-out data, read the way the engine reads.

Since 0.4.0 the objective is SQuAD 2.0's own (``--objective squad2``, the default): every question of the
calibration articles of :mod:`qa.training.splits` (SQuAD 2.0 dev articles 0, 2 and 4: 779 questions, 379 of
them unanswerable) is asked through the whole engine over an index of those three articles
(:mod:`qa.training.squad2`, engine mode), and the threshold is the margin that maximises plain SQuAD 2.0 F1 on
them: no weighting by how often users might ask either kind. The held-out articles are never read here.

``--objective mix``, the objective of the readers before 0.4.0, is described below.

The engine reads a question over its top passages and abstains when the best span's score does not
beat the no-answer score by ``no_answer_threshold`` logits. This script measures that margin on
SQuAD 2.0 dev (never used for training), each question read over the 3 paragraphs that BM25 ranks
highest in a small "index":

* **answerable**: SQuAD 2.0 dev questions with an answer, over their own article's paragraphs;
* **unanswerable, same article**: SQuAD 2.0 dev questions written against a paragraph that does not
  answer them (adversarial: same topic, plausible distractors), over their own article's paragraphs;
* **unanswerable, other article**: answerable questions asked of another article (the sources are
  about something else, as when a user asks the article about the capital of France).

The threshold maximises mean F1, where abstaining scores 1 on an unanswerable question and 0 on an
answerable one, and the three kinds are weighted by how often users ask them: by default 0.8, 0.1, 0.1
(four questions in five are answered by the article: 18 of the 21 questions of the article development
set, 34 of 45 in ``bench/data/article_test_qa.jsonl``; the unanswerable ones on topic and off topic alike).
Before 0.2.0 (the minilm-8 reader) the weights were 1/2, 1/4, 1/4 (``--weights 0.5,0.25,0.25``), which
assumed that half of all questions have no answer and so refused about 28% of answerable ones. The threshold
is chosen on all sampled questions and written to ``calibration.json`` in the reader folder, where
:class:`qa.assistant.Assistant` picks it up as the default ``no_answer_threshold``. How well the choice
holds on unseen articles is reported by 2-fold cross-validation over articles: the threshold chosen on the
even-numbered articles, scored on the odd ones, and the other way round. The report also lists the
trade-off at a few thresholds (how often answerable questions are answered, how often unanswerable ones are).

Run: ``python -m qa.training.calibrate --model models/reader`` (about 25 minutes on 2 cores;
``--margins FILE`` keeps every question's margin, ``--from-margins FILE`` recomputes the report from it).
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import math
import random
import sys
import time
from pathlib import Path

from qa.evaluation import score
from qa.reader import Reader
from qa.retrieval import tokenize
from qa.training import add_bf16_option, use_bf16
from qa.training.splits import SQUAD2_DEV

log = logging.getLogger(__name__)
KINDS = ("answerable", "unanswerable_same_article", "unanswerable_other_article")
WEIGHTS = {"answerable": 0.8, "unanswerable_same_article": 0.1, "unanswerable_other_article": 0.1}
PASSAGES = 3


class ParagraphRanker:
    """BM25 over one article's paragraphs, built once and asked for each question of that article."""

    def __init__(self, paragraphs: list[str]) -> None:
        import bm25s

        self.paragraphs = paragraphs
        self.model = bm25s.BM25()
        self.model.index([tokenize(p) or ["\x00"] for p in paragraphs], show_progress=False)

    def top(self, question: str, k: int = PASSAGES) -> list[str]:
        """The ``k`` paragraphs BM25 ranks highest for ``question`` (ties in paragraph order)."""
        words = [w for w in tokenize(question) if w in self.model.vocab_dict]
        if not words:
            return self.paragraphs[:k]
        scores = self.model.get_scores(words)
        order = sorted(range(len(self.paragraphs)), key=lambda i: -scores[i])
        return [self.paragraphs[i] for i in order[:k]]


def sample_rows(path: Path, per_kind: int, seed: int) -> list[dict]:
    """``per_kind`` questions of each kind, with the paragraphs each is read over.

    Returns:
        Rows with ``kind``, ``question``, ``golds`` (empty when unanswerable), ``article`` (the article the
        question was written for; its parity picks the calibration or the test half) and ``passages``.
    """
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    rng = random.Random(seed)
    paragraphs = [[p["context"] for p in article["paragraphs"]] for article in data]
    answerable, unanswerable = [], []
    for a_i, article in enumerate(data):
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                row = {"question": qa["question"].strip(), "article": a_i,
                       "golds": [] if qa.get("is_impossible") else [a["text"] for a in qa["answers"]]}
                (answerable if row["golds"] else unanswerable).append(row)
    rng.shuffle(answerable)
    rng.shuffle(unanswerable)
    rows = []
    for row in answerable[:per_kind]:
        rows.append({**row, "kind": "answerable"})
    for row in unanswerable[:per_kind]:
        rows.append({**row, "kind": "unanswerable_same_article"})
    for row in answerable[per_kind : 2 * per_kind]:
        # Another article of the same half, so the two halves stay apart.
        others = [a for a in range(len(data)) if a != row["article"] and a % 2 == row["article"] % 2]
        rows.append({**row, "kind": "unanswerable_other_article", "golds": [], "read_in": rng.choice(others)})
    rankers: dict[int, ParagraphRanker] = {}
    for row in rows:
        article = row.get("read_in", row["article"])
        if article not in rankers:
            rankers[article] = ParagraphRanker(paragraphs[article])
        row["passages"] = rankers[article].top(row["question"])
    return rows


def margins(reader: Reader, rows: list[dict], batch: int = 16) -> list[tuple[str, float]]:
    """(best span, best span score - no-answer score) per row, reading its passages as the engine does."""
    out: list[tuple[str, float]] = []
    started = time.time()
    for b in range(0, len(rows), batch):
        part = rows[b : b + batch]
        for reading in reader.read_many([(r["question"], r["passages"]) for r in part], top_k=1):
            out.append((reading.spans[0].text, reading.margin) if reading.spans else ("", float("-inf")))
        log.info("%d/%d questions read, %.1f q/s", len(out), len(rows), len(out) / (time.time() - started))
    return out


@functools.lru_cache(maxsize=None)
def _f1(prediction: str | None, golds: tuple[str, ...]) -> float:
    return score(prediction, list(golds))[1]


def summarize(rows: list[dict], preds: list[tuple[str, float]], threshold: float,
              weights: dict[str, float] = WEIGHTS) -> dict:
    """Per kind: F1 (abstention right = 1) and how often it answers; overall F1 weighted by ``weights``."""
    report: dict = {}
    for kind in KINDS:
        scored = [(_f1(text if m >= threshold else None, tuple(r["golds"])), m >= threshold)
                  for (text, m), r in zip(preds, rows) if r["kind"] == kind]
        if scored:
            report[kind] = {"questions": len(scored), "f1": 100 * sum(f for f, _ in scored) / len(scored),
                            "answered": 100 * sum(a for _, a in scored) / len(scored)}
    report["weighted_f1"] = sum(weights[k] * report[k]["f1"] for k in KINDS if k in report)
    return report


def half(rows: list[dict], parity: int) -> list[int]:
    """Indices of the rows whose question was written for an article of this parity (0 even, 1 odd)."""
    return [i for i, r in enumerate(rows) if r["article"] % 2 == parity]


def report_on(rows: list[dict], preds: list[tuple[str, float]], ids: list[int], threshold: float,
              weights: dict[str, float] = WEIGHTS) -> dict:
    """:func:`summarize` of the rows ``ids`` at ``threshold``."""
    return summarize([rows[i] for i in ids], [preds[i] for i in ids], threshold, weights)


def choose(rows: list[dict], preds: list[tuple[str, float]], ids: list[int],
           weights: dict[str, float] = WEIGHTS) -> float:
    """The threshold that maximises weighted F1 on the rows ``ids`` (ties: the lowest, which answers more)."""
    candidates = sorted({round(preds[i][1], 2) for i in ids if preds[i][1] != float("-inf")} | {0.0})
    return max(candidates, key=lambda t: (report_on(rows, preds, ids, t, weights)["weighted_f1"], -t))


def calibrate(rows: list[dict], preds: list[tuple[str, float]], weights: dict[str, float] = WEIGHTS) -> float:
    """The threshold that maximises weighted F1 over all rows."""
    return choose(rows, preds, list(range(len(rows))), weights)


def cross_validate(rows: list[dict], preds: list[tuple[str, float]], weights: dict[str, float] = WEIGHTS) -> dict:
    """2-fold cross-validation over articles: chosen on one half, scored on the other, both ways.

    Returns:
        Per fold the threshold and the held-out report, and the held-out reports' per-kind mean.
    """
    folds = {}
    for fit, held in ((0, 1), (1, 0)):
        t = choose(rows, preds, half(rows, fit), weights)
        folds[f"chosen_on_{'odd' if fit else 'even'}_articles"] = {
            "threshold": t, "held_out": report_on(rows, preds, half(rows, held), t, weights)}
    reports = [f["held_out"] for f in folds.values()]
    mean = {k: {m: sum(r[k][m] for r in reports) / len(reports) for m in ("f1", "answered")}
            for k in KINDS if all(k in r for r in reports)}
    mean["weighted_f1"] = sum(r["weighted_f1"] for r in reports) / len(reports)
    return {**folds, "held_out_mean": mean}


def trade_off(rows: list[dict], preds: list[tuple[str, float]], thresholds: list[float],
              weights: dict[str, float] = WEIGHTS) -> list[dict]:
    """Per threshold, over all rows: weighted F1 and how often each kind is answered."""
    out = []
    for t in thresholds:
        r = summarize(rows, preds, t, weights)
        out.append({"threshold": t, "weighted_f1": round(r["weighted_f1"], 1),
                    **{f"{k}_answered": round(r[k]["answered"], 1) for k in KINDS if k in r}})
    return out


def parse_weights(text: str) -> dict[str, float]:
    """``"0.8,0.1,0.1"`` -> the weights of the three kinds, in :data:`KINDS` order; they must sum to 1."""
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"weights must be three numbers like 0.8,0.1,0.1, not {text!r}") from None
    if len(values) != len(KINDS) or any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
        raise argparse.ArgumentTypeError(f"weights must be three non-negative numbers summing to 1, not {text!r}")
    return dict(zip(KINDS, values))


def parse_margins(text: str) -> list[float]:
    """``"-8,-4,0"`` -> [-8.0, -4.0, 0.0]."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"margins must be numbers separated by commas, not {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models/reader")
    parser.add_argument("--data", default=str(SQUAD2_DEV))
    parser.add_argument("--per-kind", type=int, default=1000, help="questions of each kind")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", help="where to write the calibration (default: MODEL/calibration.json)")
    parser.add_argument("--margins", help="also write each question's kind, article, prediction and margin here")
    parser.add_argument("--from-margins", help="read the margins written by --margins instead of running the reader")
    parser.add_argument("--weights", type=parse_weights, default=WEIGHTS, metavar="A,S,O",
                        help="weights of answerable, unanswerable same-article and other-article questions "
                             "(default %(default)s)")
    parser.add_argument("--dry-run", action="store_true", help="print the report, write nothing")
    parser.add_argument("--objective", choices=["squad2", "mix"], default="squad2",
                        help="squad2: SQuAD 2.0 F1 through the engine on the calibration articles (default); "
                             "mix: the weighted mix of three kinds read over BM25 paragraphs (before 0.4.0)")
    parser.add_argument("--screen-margins", type=parse_margins, default=[], metavar="M,M,...",
                        help="squad2 objective, a reader with a screener (qa.readers.SCREENERS): also choose its "
                             "screen margin among these (one engine run each), e.g. -8,-6,-5,-4,-3,-2,-1,0")
    add_bf16_option(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    if args.objective == "squad2":
        return calibrate_squad2(args, argv)
    started = time.time()
    rows = sample_rows(Path(args.data), args.per_kind, args.seed)
    if args.from_margins:
        saved = [json.loads(line) for line in Path(args.from_margins).read_text(encoding="utf-8").splitlines()]
        if [(r["kind"], r["question"]) for r in saved] != [(r["kind"], r["question"]) for r in rows]:
            raise SystemExit(f"{args.from_margins} was written for other questions (--per-kind, --seed or --data)")
        preds = [(r["prediction"], float(r["margin"])) for r in saved]
    else:
        reader = Reader.load(args.model, use_bf16=use_bf16(args))
        preds = margins(reader, rows)
    if args.margins:
        Path(args.margins).write_text("".join(json.dumps({"kind": r["kind"], "article": r["article"], "question":
                                      r["question"], "golds": r["golds"], "prediction": text, "margin": m}) + "\n"
                                      for r, (text, m) in zip(rows, preds)), encoding="utf-8")
    weights = args.weights
    threshold = calibrate(rows, preds, weights)
    result = {
        "no_answer_threshold": threshold,
        "objective": "mean F1, abstaining right = 1; weights " + ", ".join(f"{k} {w}" for k, w in weights.items()),
        "data": f"{Path(args.data).name}, {args.per_kind} questions per kind, seed {args.seed}, "
                f"each read over its top {PASSAGES} BM25 paragraphs; threshold chosen on all of them",
        "bf16": None if args.from_margins else reader.use_bf16,
        "all_questions": summarize(rows, preds, threshold, weights),
        "cross_validation": cross_validate(rows, preds, weights),
        "trade_off": trade_off(rows, preds, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, threshold],
                               weights),
    }
    return write_calibration(result, args, argv, started)


def write_calibration(result: dict, args: argparse.Namespace, argv: list[str] | None, started: float) -> int:
    """Print the calibration with its command and time, and write it (unless ``--dry-run``) to ``--out`` or the
    reader's ``calibration.json``."""
    result["command"] = "python -m qa.training.calibrate " + " ".join(argv if argv is not None else sys.argv[1:])
    result["seconds"] = round(time.time() - started, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if not args.dry_run:
        Path(args.out or Path(args.model) / "calibration.json").write_text(text + "\n", encoding="utf-8")
    return 0


def calibrate_squad2(args: argparse.Namespace, argv: list[str] | None) -> int:
    """``--objective squad2``: the threshold that maximises SQuAD 2.0 F1 through the engine on the calibration
    articles; writes ``calibration.json`` (unless ``--dry-run``) with the report at that threshold."""
    from qa.training import squad2

    started = time.time()
    questions, preds, _ = squad2.run("engine", "calibration", args.model, 0, 0, use_bf16=use_bf16(args),
                                     early_exit_margin=math.inf)
    if args.margins:
        squad2.write_predictions(args.margins, questions, preds)
    threshold = squad2.best_threshold(questions, preds)
    # Early exit: the same questions read over their best passage alone; the lowest exit margin that keeps F1.
    _, first, _ = squad2.run("engine", "calibration", args.model, 0, 0, use_bf16=use_bf16(args),
                             early_exit_margin=-math.inf)
    if args.margins:
        squad2.write_predictions(Path(args.margins).with_suffix(".first-passage.jsonl"), questions, first)
    grid = sorted({round(max(threshold, 0.5 * i), 4) for i in range(25)})
    exit_margin, exit_rows = squad2.choose_exit(questions, preds, first, threshold, grid)

    def at(t: float) -> dict:
        given = [squad2.at_threshold(p, t) for p in preds]
        return {k: round(v, 2) if isinstance(v, float) else v for k, v in squad2.report(questions, given).items()}

    result = {
        "no_answer_threshold": threshold,
        "objective": "SQuAD 2.0 F1 (abstaining right only where there is no answer), through the engine",
        "data": f"{Path(SQUAD2_DEV).name}, the calibration articles of qa.training.splits (all their questions), "
                "indexed together and asked through the assistant",
        "bf16": use_bf16(args),
        "calibration_articles": at(threshold),
        "trade_off": [{"threshold": t, **at(t)} for t in sorted({-2.0, 0.0, 2.0, 4.0, 6.0, 8.0, threshold})],
        "early_exit_margin": exit_margin,
        "early_exit": {"rule": "the lowest margin (at least the threshold, steps of 0.5 up to 12) whose F1 is within "
                               "0.1 of reading every passage", "rows": exit_rows},
    }
    if args.screen_margins:
        result.update(choose_screening(args, threshold, exit_margin))
    return write_calibration(result, args, argv, started)


def choose_screening(args: argparse.Namespace, threshold: float, exit_margin: float | None) -> dict:
    """The screen margin of ``--screen-margins`` (:func:`qa.training.squad2.choose_screen`), each margin and none
    (``-inf``) run through the engine on the calibration articles with the reader's chosen threshold and exit margin.

    Returns:
        ``screen_margin`` (None: no screening) and ``screening`` (the rule, the screener and one row per margin, with
        the answers that differ from no screening).
    """
    from qa.readers import SCREENERS, reader_card, reader_folder, reader_name
    from qa.training import squad2

    screener = SCREENERS.get(reader_name(args.model))
    if screener is None:
        raise SystemExit(f"--screen-margins: {args.model} has no screener (qa.readers.SCREENERS)")
    if exit_margin is None:
        return {"screen_margin": None, "screening": {"rule": "screening needs early exit; this reader has none"}}
    rows, unscreened = {}, None
    for margin in [-math.inf] + sorted(set(args.screen_margins)):
        _, predictions, report = squad2.run("engine", "calibration", args.model, 0, 0, use_bf16=use_bf16(args),
                                            threshold=threshold, early_exit_margin=exit_margin, screen_margin=margin)
        texts = [p.text for p in predictions]
        unscreened = texts if unscreened is None else unscreened
        rows[margin] = {**{k: round(report[k], 2) for k in ("f1", "has_ans_f1", "unanswerable_refused", "seconds")},
                        "changed": sum(a != b for a, b in zip(texts, unscreened))}
    chosen = squad2.choose_screen({m: row["f1"] for m, row in rows.items()})
    return {"screen_margin": chosen, "screening": {
        "rule": "the highest margin whose F1 is at least the F1 without screening (-inf) minus 0.1",
        "screener": f"{screener} ({reader_card(reader_folder(screener)).get('version')})",
        "rows": [{"screen_margin": "-inf" if m == -math.inf else m, **row} for m, row in rows.items()]}}


if __name__ == "__main__":
    raise SystemExit(main())
