"""Batch throughput: ``Assistant.ask_many(questions)`` versus a loop of ``Assistant.ask``, and whether they agree.

What it measures, side by side in one run on the shipped index (models loaded and warmed once):

* **loop of ask**: ``[assistant.ask(q, history=h) for q, h in ...]``: questions per second.
* **ask_many**: ``assistant.ask_many(questions, histories)`` in chunks of ``--batch`` questions (0: all at once):
  batched query embedding, batched reader windows (length-sorted, padded batches of 16).
* the ratio of the two rates, and a check that both give the same answers: same answer text (or both abstain),
  same cited offsets, and the score within ``--tolerance``. Mismatches are listed (padding in batched reading can
  move logits in the last float digits, which can flip near-ties).

The questions are the article dev set (``--dev``), repeated up to ``--questions`` questions (follow-up rows keep
their history). Each configuration runs ``--repeats`` times; the table gives the median and p95 of the run times.

Run::

    .venv/bin/python bench/throughput.py
    .venv/bin/python bench/throughput.py --questions 64 --batch 0,8 --repeats 3 --json bench/results/throughput.json
    .venv/bin/python bench/throughput.py --questions 6 --repeats 1       # quick check
"""

from __future__ import annotations

import argparse
import logging
import time

import _common as c

log = logging.getLogger("bench.throughput")


def signature(answer) -> tuple:
    cite = answer.citations[0] if answer.citations else None
    return (answer.text, (cite.source_id, cite.start, cite.end) if cite else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", default=str(c.DEV_QA), help="JSONL questions (default ../shared/eval/article_dev_qa.jsonl)")
    parser.add_argument("--index", help="index directory (default: the shipped index/)")
    parser.add_argument("--questions", type=int, default=21, help="questions per run (dev set repeated; default 21)")
    parser.add_argument("--batch", default="0", help="ask_many chunk sizes, comma separated; 0 = all at once (default 0)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each configuration (default 3)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest score difference counted as equal")
    args, env = c.start(parser, argv)

    from qa.assistant import Assistant
    from qa.evaluation import read_rows

    rows = read_rows(args.dev)
    rows = [rows[i % len(rows)] for i in range(args.questions)]
    questions = [r["question"] for r in rows]
    histories = [r["history"] or None for r in rows]
    assistant = Assistant.load(args.index)
    if not hasattr(assistant, "ask_many"):
        raise SystemExit("Assistant has no ask_many: nothing to compare")
    log.info("warm-up")
    assistant.ask_many(questions[:4], histories[:4])
    for q, h in zip(questions[:4], histories[:4]):
        assistant.ask(q, history=h)

    results = []
    loop_times, loop_answers = [], None
    batches = [int(b) for b in args.batch.split(",") if b.strip()]
    many_times: dict[int, list[float]] = {b: [] for b in batches}
    many_answers: dict[int, list] = {}
    for rep in range(args.repeats):  # interleaved, so a change in background load hits every configuration
        log.info("repeat %d/%d", rep + 1, args.repeats)
        started = time.perf_counter()
        answers = [assistant.ask(q, history=h) for q, h in zip(questions, histories)]
        loop_times.append(time.perf_counter() - started)
        loop_answers = loop_answers or answers
        for b in batches:
            size = b or len(questions)
            started = time.perf_counter()
            answers = []
            for i in range(0, len(questions), size):
                answers += assistant.ask_many(questions[i : i + size], histories[i : i + size])
            many_times[b].append(time.perf_counter() - started)
            many_answers.setdefault(b, answers)

    def row(name: str, times: list[float]) -> dict:
        s = c.summarize_ms(times)
        return {"config": name, "questions": len(questions), "runs": len(times), "median_run_ms": s["median_ms"],
                "p95_run_ms": s["p95_ms"], "questions_per_s": len(questions) / (s["median_ms"] / 1000),
                "ms_per_question": s["median_ms"] / len(questions)}

    base = row("loop of ask", loop_times)
    base["speedup"] = 1.0
    results.append(base)
    mismatches = []
    for b in batches:
        r = row(f"ask_many (batch {b or 'all'})", many_times[b])
        r["speedup"] = c.ratio(r["questions_per_s"], base["questions_per_s"])
        diffs = []
        for i, (one, many) in enumerate(zip(loop_answers, many_answers[b])):
            score_diff = abs(one.score - many.score)
            if signature(one) != signature(many) or score_diff > args.tolerance:
                diffs.append({"i": i, "question": questions[i], "ask": one.text, "ask_many": many.text,
                              "ask_score": one.score, "ask_many_score": many.score})
        r["mismatches"] = len(diffs)
        r["max_score_diff"] = max(abs(a.score - m.score) for a, m in zip(loop_answers, many_answers[b]))
        mismatches += [{**d, "batch": b} for d in diffs]
        results.append(r)

    print(c.header("Batch throughput (bench/throughput.py)", env))
    print(c.table(["config", "questions", "runs", "median run ms", "p95 run ms", "questions/s", "ms/question",
                   "x loop", "answer mismatches", "max score diff"],
                  [[r["config"], r["questions"], r["runs"], r["median_run_ms"], r["p95_run_ms"], r["questions_per_s"],
                    r["ms_per_question"], r["speedup"], r.get("mismatches", "-"), r.get("max_score_diff")]
                   for r in results], digits=2))
    for d in mismatches:
        print(f"MISMATCH batch {d['batch'] or 'all'} #{d['i']} {d['question']!r}: ask={d['ask']!r} ({d['ask_score']:.4f}) "
              f"ask_many={d['ask_many']!r} ({d['ask_many_score']:.4f})")
    c.write_json(args.json, {"script": "throughput", "args": vars(args), "env": env, "results": results,
                             "mismatches": mismatches})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
