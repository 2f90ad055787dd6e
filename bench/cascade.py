"""Would a reader cascade pay? The fast reader answers; where its confidence is under a cut, the accurate one rereads.

Measured, not modelled. Each reader answers every question once, and the per-question prediction, F1,
confidence and time are kept. The cascade at a cut then takes the fast reader's answer where its confidence
reaches the cut and the accurate reader's answer elsewhere. Its time per question is the fast reader's time,
plus the accurate reader's time where it rereads. Both readers are deterministic, so the cascade's F1 is
exactly what a cascade would score. Its times add two measured times: the fast reader's retrieval, done again
by the second reader, is counted twice, so they are an upper bound.

Two levels:

* **engine** (``--sets``): the article sets through the whole engine, one fresh ``Assistant`` per reader.
  This includes retrieval, follow-ups, and abstention with each reader's own calibration. Confidence is the
  answer's probability, or for an abstention the probability the reader left for no answer
  (:func:`qa.evaluation.answer_rows`). Each reader is warmed up first on the set's first 3 questions.
* **reader** (``--predictions FAST SLOW``, repeatable): files of ``python -m qa.training.evaluate --predictions``
  for both readers on the same questions (SQuAD v1.1 dev sample, XQuAD-en). Every question there has an
  answer. Confidence is the best span's probability. These files carry no times: they give F1 against the
  share reread.

Printed for each set: each reader alone and the cascade at each cut, with F1, the share of questions reread,
and, at the engine level, unanswerable questions answered and p50 / p95 / mean ms per question.

Run (the article sets take about 4 minutes on 2 cores, fp32)::

    .venv/bin/python bench/cascade.py --fast minilm --slow mpnet --json bench/results/cascade.json \\
        --predictions runs/xquad-minilm.jsonl runs/xquad-mpnet.jsonl
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import _common as c

ARTICLE_SETS = "bench/data/article_test_qa.jsonl,bench/data/article_final_qa.jsonl,../shared/eval/article_dev_qa.jsonl"
CUTS = "0.3,0.5,0.6,0.7,0.8,0.9"


def cascade(fast: list[dict], slow: list[dict], cut: float) -> tuple[list[dict], float]:
    """The cascade's per-question results at ``cut``, and the share of questions the slow reader reread.

    Args:
        fast: the fast reader's results, one per question, each with ``confidence`` (and ``seconds`` when timed).
        slow: the slow reader's results for the same questions, in the same order.
        cut: the fast reader's answer stands where its confidence is at least this (an abstention, ``prediction``
            None, is always reread, as :func:`qa.assistant.needs_rereading` does).
    Returns:
        (results, share reread): a question the slow reader rereads gets the slow reader's result, and
        its ``seconds`` (when both are timed) is the sum of the two readers' times.
    Raises:
        ValueError: the two lists are not about the same questions.
    """
    if [f["id"] for f in fast] != [s["id"] for s in slow]:
        raise ValueError("the two readers' results are not for the same questions in the same order")
    out, reread = [], 0
    for f, s in zip(fast, slow):
        if f.get("prediction", "") is not None and f["confidence"] >= cut:
            out.append(f)
            continue
        reread += 1
        both = dict(s)
        if "seconds" in f and "seconds" in s:
            both["seconds"] = f["seconds"] + s["seconds"]
        out.append(both)
    return out, reread / max(1, len(fast))


def engine_row(name: str, results: list[dict], reread: float | None = None) -> dict:
    """One table row for engine results: F1, unanswerable questions answered, latency per question."""
    from qa.evaluation import percentile, summarize

    report = summarize(results, 3)
    ms = [1000 * r["seconds"] for r in results]
    return {"reader": name, "f1": round(report["f1"], 2), "reread": None if reread is None else round(reread, 3),
            "unanswerable_answered": sum(1 for r in results if not r["gold"] and r["prediction"] is not None),
            "unanswerable": report["unanswerable"], "p50_ms": round(percentile(ms, 50), 1),
            "p95_ms": round(percentile(ms, 95), 1), "mean_ms": round(statistics.fmean(ms), 1)}


def reader_row(name: str, results: list[dict], reread: float | None = None) -> dict:
    """One table row for reader-level results: F1 and the share reread."""
    return {"reader": name, "f1": round(100 * statistics.fmean(r["f1"] for r in results), 2),
            "reread": None if reread is None else round(reread, 3)}


def table(rows: list[dict]) -> str:
    keys = list(rows[0])
    return c.table(keys, [[row[k] for k in keys] for row in rows], digits=2)


def compare(fast: list[dict], slow: list[dict], cuts: list[float], names: tuple[str, str], row) -> list[dict]:
    """Rows for the fast reader, the slow reader and the cascade at each cut."""
    rows = [row(names[0], fast), row(names[1], slow)]
    for cut in cuts:
        results, reread = cascade(fast, slow, cut)
        rows.append(row(f"cascade@{cut:g}", results, reread))
    return rows


def answer_set(reader: str, path: str) -> list[dict]:
    """Per-question engine results of one reader on one article set (a fresh Assistant, warmed up first)."""
    from qa import Assistant
    from qa.evaluation import answer_rows, read_rows

    rows = read_rows(path)
    warm = Assistant.load(reader=reader)
    answer_rows(rows[:3], warm)
    return answer_rows(rows, Assistant.load(reader=reader))


def read_predictions(path: str) -> list[dict]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [{**r, "id": f"{r.get('set', '')}/{r['id']}", "confidence": r["probability"]} for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", default="minilm", help="the fast reader (name or folder)")
    parser.add_argument("--slow", default="mpnet", help="the accurate reader (name or folder)")
    parser.add_argument("--sets", default=ARTICLE_SETS, help="comma-separated JSONL question sets ('' for none)")
    parser.add_argument("--cuts", default=CUTS, help="comma-separated confidence cuts")
    parser.add_argument("--predictions", nargs=2, action="append", default=[], metavar=("FAST", "SLOW"),
                        help="prediction files of qa.training.evaluate --predictions, fast reader's first")
    args, env = c.start(parser, argv)
    cuts = [float(x) for x in args.cuts.split(",")]
    names = (Path(args.fast).name, Path(args.slow).name)
    print(c.header(f"Cascade: {args.fast} answers, {args.slow} rereads under a confidence cut", env))
    report: dict = {"env": env, "fast": args.fast, "slow": args.slow, "cuts": cuts, "engine": {},
                    "reader": {}}
    sets = [s for s in args.sets.split(",") if s]
    fast_runs = {s: answer_set(args.fast, s) for s in sets}
    slow_runs = {s: answer_set(args.slow, s) for s in sets}
    for s in sets:
        rows = compare(fast_runs[s], slow_runs[s], cuts, names, engine_row)
        report["engine"][s] = rows
        print(f"\n{s} (engine, {len(fast_runs[s])} questions)\n\n{table(rows)}")
    for fast_file, slow_file in args.predictions:
        fast, slow = read_predictions(fast_file), read_predictions(slow_file)
        rows = compare(fast, slow, cuts, names, reader_row)
        report["reader"][f"{fast_file} vs {slow_file}"] = rows
        print(f"\n{fast_file} vs {slow_file} (reader, {len(fast)} questions)\n\n{table(rows)}")
    c.write_json(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
