"""SQuAD metrics and the ``qa eval`` harness over question files.

The metrics are the official SQuAD v1.1 ones: answers are normalised (lower case, punctuation and
the articles a/an/the removed, whitespace collapsed); exact match and token F1 take the maximum over
the gold answers. For a question with no gold answer (``answers: []``), abstaining scores 1 and any
answer scores 0 (the SQuAD 2.0 convention).
"""

from __future__ import annotations

import collections
import json
import re
import string
import time
from pathlib import Path

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """Lower case, strip punctuation and articles, collapse whitespace (official SQuAD normalisation)."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
    """Token-level F1 between two answers after normalisation."""
    pred_tokens = normalize_answer(prediction).split()
    gold_tokens = normalize_answer(gold).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred_tokens)
    recall = same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def score(prediction: str | None, golds: list[str]) -> tuple[float, float]:
    """(EM, F1) of one prediction against its gold answers; None means the system abstained."""
    if not golds:
        return (1.0, 1.0) if prediction is None else (0.0, 0.0)
    if prediction is None:
        return 0.0, 0.0
    return max(exact_match(prediction, g) for g in golds), max(f1_score(prediction, g) for g in golds)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def read_rows(path: str | Path) -> list[dict]:
    """Rows of a JSONL question file: ``question``, ``answers`` (empty = unanswerable), optional ``history``, ``id``."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            if line.strip():
                row = json.loads(line)
                if "question" not in row or "answers" not in row:
                    raise ValueError(f"{path}:{n}: a row needs 'question' and 'answers'")
                row.setdefault("id", str(n))
                row.setdefault("history", [])
                rows.append(row)
    return rows


def evaluate_rows(rows: list[dict], assistant, k: int = 3) -> dict:
    """Run the assistant over rows and compute the harness metrics.

    Returns:
        A report: EM, F1 (all, answerable, unanswerable, follow-ups), retrieval recall@k (a gold answer
        inside one of the top-k passages), citation accuracy (the cited offsets slice the source to the
        predicted answer and it overlaps a gold answer), abstention precision/recall, latency p50/p95,
        and one row per question that missed.
    """
    return summarize(answer_rows(rows, assistant, k), k)


def answer_rows(rows: list[dict], assistant, k: int = 3) -> list[dict]:
    """Ask each row's question (with its history) and score the answer: one result per row, in order.

    Each result has the prediction (None when the engine abstained), its EM and F1, ``confidence``
    (:attr:`qa.types.Answer.confidence`), whether a
    gold answer was in the top ``k`` passages (``recall``), whether the citation is right (``cited``) and the
    ``seconds`` the question took.
    """
    results = []
    for row in rows:
        started = time.perf_counter()
        answer = assistant.ask(row["question"], history=row["history"] or None)
        seconds = time.perf_counter() - started
        # The answer carries the passages it read (top_k of the same search); search again only for a deeper k.
        retrieved = (answer.passages[:k] if k <= len(answer.passages)
                     else assistant.retriever.search([_search_query(assistant, row)], k)[0])
        em, f1 = score(answer.text, row["answers"])
        recall = any(g in p.passage.text for p in retrieved for g in row["answers"]) if row["answers"] else None
        cited = None
        if answer.text is not None and answer.citations:
            c = answer.citations[0]
            src = assistant.source(c.source_id).text
            cited = src[c.start:c.end] == answer.text and any(f1_score(answer.text, g) > 0 for g in row["answers"])
        results.append({"id": row["id"], "question": row["question"], "history": row["history"],
                        "gold": row["answers"], "prediction": answer.text, "score": answer.score,
                        "confidence": answer.confidence, "em": em, "f1": f1, "recall": recall, "cited": cited,
                        "seconds": seconds, "follow_up": bool(row["history"]), "query": answer.query,
                        "reader": answer.reader})
    return results


def _search_query(assistant, row: dict) -> str:
    return assistant._query(row["question"], row["history"] or None).search


def summarize(results: list[dict], k: int) -> dict:
    """Aggregate per-question results (see :func:`evaluate_rows`)."""
    def mean(xs: list[float]) -> float:
        return 100.0 * sum(xs) / len(xs) if xs else 0.0

    answerable = [r for r in results if r["gold"]]
    unanswerable = [r for r in results if not r["gold"]]
    followups = [r for r in results if r["follow_up"]]
    abstained = [r for r in results if r["prediction"] is None]
    cited = [r for r in results if r["cited"] is not None]
    seconds = [r["seconds"] for r in results]
    return {
        "questions": len(results),
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "em": mean([r["em"] for r in results]),
        "f1": mean([r["f1"] for r in results]),
        "answerable_em": mean([r["em"] for r in answerable]),
        "answerable_f1": mean([r["f1"] for r in answerable]),
        "follow_up_f1": mean([r["f1"] for r in followups]),
        f"recall@{k}": mean([float(r["recall"]) for r in answerable]),
        "citation_accuracy": mean([float(r["cited"]) for r in cited]),
        "abstention_precision": mean([float(not r["gold"]) for r in abstained]) if abstained else 100.0,
        "abstention_recall": mean([float(r["prediction"] is None) for r in unanswerable]),
        "answered_answerable": mean([float(r["prediction"] is not None) for r in answerable]),
        "latency_p50_ms": 1000 * percentile(seconds, 50),
        "latency_p95_ms": 1000 * percentile(seconds, 95),
        "answered_by": dict(collections.Counter(r.get("reader", "") for r in results)),
        "misses": [r for r in results if r["f1"] < 1.0 or (r["recall"] is False)],
    }


def evaluate_file(path: str | Path, assistant, k: int = 3) -> dict:
    """:func:`evaluate_rows` over a JSONL file."""
    return evaluate_rows(read_rows(path), assistant, k)


def format_report(report: dict) -> str:
    """A readable summary with a table of the misses."""
    k = next(key for key in report if key.startswith("recall@"))
    lines = [
        f"questions {report['questions']} ({report['answerable']} answerable, {report['unanswerable']} unanswerable)",
        f"EM {report['em']:.1f}  F1 {report['f1']:.1f}  (answerable: EM {report['answerable_em']:.1f} "
        f"F1 {report['answerable_f1']:.1f}; follow-ups F1 {report['follow_up_f1']:.1f})",
        f"retrieval {k} {report[k]:.1f}%   citation accuracy {report['citation_accuracy']:.1f}%",
        f"abstention precision {report['abstention_precision']:.1f}%  recall {report['abstention_recall']:.1f}%  "
        f"(answerable answered {report['answered_answerable']:.1f}%)",
        f"latency p50 {report['latency_p50_ms']:.0f} ms  p95 {report['latency_p95_ms']:.0f} ms",
    ]
    if len(report.get("answered_by", {})) > 1:  # a cascade: how many answers each reader gave
        lines.append("answered by " + ", ".join(f"{name} {n}" for name, n in report["answered_by"].items()))
    if report["misses"]:
        lines.append("")
        lines.append(f"{'id':6} {'F1':>5} {'ret':>4}  question -> prediction | gold")
        for r in report["misses"]:
            ret = "-" if r["recall"] is None else ("yes" if r["recall"] else "NO")
            gold = r["gold"][0] if r["gold"] else "(no answer)"
            pred = "(abstained)" if r["prediction"] is None else r["prediction"]
            lines.append(f"{r['id']:6} {100 * r['f1']:5.1f} {ret:>4}  {r['question']} -> {pred} | {gold}")
    return "\n".join(lines)
