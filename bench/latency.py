"""Warm answer latency per question, split into retrieval / reading / the rest, with answer F1 beside every time.

What it measures, side by side in one run (models loaded once, one warm-up pass first):

* **pipeline fp32**: ``Assistant.ask`` on the shipped index (hybrid retrieval, top-3 passages, reader in
  float32), per dev question. The split comes from ``Answer.timings`` (set by ``Assistant.ask_many``:
  ``retrieval`` = embedding + FAISS + BM25 + fusion, ``reading`` = reader over the passages, ``rest`` =
  total - retrieval - reading: question cleaning, follow-up rewriting, answer building/citations).
* **whole corpus (no retrieval)**: the same reader given every source text whole, windowed with its stride
  (384 tokens, 128 overlap), then the same answer building. Shows what retrieval saves, at what F1 cost.
* **pipeline bf16 autocast**: the pipeline with the reader's bf16 autocast forced on. The library enables it
  only where the CPU has native bf16 (``qa.reader.cpu_has_bf16``); on a CPU without AVX512-BF16/AMX bf16 is
  emulated and expected to be slower: it is reported, not recommended.
* **bigger corpora**: ``--corpus-sizes 0,10,100`` adds that many SQuAD v1.1 articles (dev first: 48
  articles; then train) as distractor sources in a temporary index (``qa.building.add``, saved to a temp dir and
  loaded back) and repeats pipeline vs whole-corpus reading: the ratio grows with the corpus. Whole-corpus
  reading over 100 articles takes on the order of a minute per question, so for corpus sizes > 0 it runs on
  the first ``--baseline-questions`` questions only (default 5), and its ratio is taken against the pipeline
  on the same questions.

F1/EM are the SQuAD metrics of ``qa.evaluation`` over the dev file (unanswerable rows: abstaining scores 1).

Run (about 2 minutes for the default sizes 0,10 on 2 idle cores; ``--corpus-sizes 0,10,100`` adds several minutes
of embedding and ~5-10 minutes of whole-corpus reading)::

    .venv/bin/python bench/latency.py
    .venv/bin/python bench/latency.py --corpus-sizes 0,10,100 --baseline-questions 5 --json bench/results/latency.json
    .venv/bin/python bench/latency.py --questions 4 --repeats 1 --corpus-sizes 0,2 --no-bf16   # quick check
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import _common as c

log = logging.getLogger("bench.latency")


def split_of(answer, seconds: float) -> dict:
    """(total, retrieval, reading, rest) seconds of one ask: from ``Answer.timings`` when present."""
    t = getattr(answer, "timings", None) or {}
    retrieval, reading = t.get("retrieval"), t.get("reading")
    if retrieval is None or reading is None:
        return {"total": seconds, "retrieval": None, "reading": None, "rest": None}
    return {"total": seconds, "retrieval": retrieval, "reading": reading, "rest": max(0.0, seconds - retrieval - reading)}


def run_pipeline(assistant, rows: list[dict], repeats: int) -> dict:
    """Ask every row ``repeats`` times; per-call timings and the first pass's predictions."""
    from qa.evaluation import score

    samples: list[dict] = []
    per_question: list[dict] = []
    for r in range(repeats):
        for row in rows:
            started = time.perf_counter()
            answer = assistant.ask(row["question"], history=row["history"] or None)
            seconds = time.perf_counter() - started
            samples.append(split_of(answer, seconds))
            if r == 0:
                em, f1 = score(answer.text, row["answers"])
                per_question.append({"id": row["id"], "prediction": answer.text, "em": em, "f1": f1})
    return {"samples": samples, "per_question": per_question}


def run_whole_corpus(assistant, rows: list[dict], repeats: int) -> dict:
    """The reader over every source text whole (no retrieval), then the assistant's own answer building."""
    from qa.answer import build_answer
    from qa.evaluation import score
    from qa.types import Passage, ScoredPassage

    sources = list(assistant.index.sources.values())
    passages = [ScoredPassage(Passage(s.id, 0, len(s.text), s.text), 0.0, i) for i, s in enumerate(sources)]
    texts = [s.text for s in sources]
    st = assistant.settings
    samples, per_question = [], []
    for r in range(repeats):
        for row in rows:
            started = time.perf_counter()
            query = assistant._query(row["question"], row["history"] or None)  # same follow-up rewriting
            reading = assistant.reader.read(query.read, texts, st.n_best)
            answer = build_answer(row["question"], reading, passages, assistant.index.sources,
                                  no_answer_threshold=assistant.no_answer_threshold, min_answer_prob=st.min_answer_prob,
                                  n_best=st.n_best)
            seconds = time.perf_counter() - started
            samples.append({"total": seconds, "retrieval": 0.0, "reading": None, "rest": None})
            if r == 0:
                em, f1 = score(answer.text, row["answers"])
                per_question.append({"id": row["id"], "prediction": answer.text, "em": em, "f1": f1})
    return {"samples": samples, "per_question": per_question}


def summarize(name: str, corpus: int, passages: int, result: dict) -> dict:
    samples = result["samples"]
    out = {"config": name, "corpus_articles": corpus, "passages": passages,
           "questions": len(result["per_question"]), "calls": len(samples),
           **c.summarize_ms([s["total"] for s in samples])}
    for part in ("retrieval", "reading", "rest"):
        values = [s[part] for s in samples if s[part] is not None]
        out[f"{part}_median_ms"] = c.summarize_ms(values)["median_ms"] if values else None
    pq = result["per_question"]
    out["f1"] = 100 * sum(p["f1"] for p in pq) / len(pq) if pq else float("nan")
    out["em"] = 100 * sum(p["em"] for p in pq) / len(pq) if pq else float("nan")
    out["per_question"] = pq
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dev", default=str(c.DEV_QA), help="JSONL questions (default ../shared/eval/article_dev_qa.jsonl)")
    parser.add_argument("--index", help="index directory (default: the shipped index/)")
    parser.add_argument("--questions", type=int, default=0, help="use only the first N questions (0: all)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the questions (default 3)")
    parser.add_argument("--corpus-sizes", default="0,10",
                        help="extra SQuAD articles added as sources, comma separated (default 0,10; try 0,10,100)")
    parser.add_argument("--baseline-questions", type=int, default=5,
                        help="questions for whole-corpus reading when extra articles are added (default 5)")
    parser.add_argument("--baseline-repeats", type=int, default=1,
                        help="timed passes of whole-corpus reading when extra articles are added (default 1)")
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 autocast comparison")
    parser.add_argument("--no-whole", action="store_true", help="skip whole-corpus reading")
    args, env = c.start(parser, argv)

    from qa import building, index as index_store
    from qa.assistant import Assistant, shared_reader
    from qa.evaluation import read_rows
    from qa.reader import cpu_has_bf16

    rows = read_rows(args.dev)
    if args.questions:
        rows = rows[: args.questions]
    sizes = c.int_list(args.corpus_sizes)
    log.info("loading the assistant")
    base = Assistant.load(args.index)
    reader = base.reader
    log.info("warm-up")
    for row in rows[:3]:
        base.ask(row["question"], history=row["history"] or None)
    results: list[dict] = []
    notes = [f"CPU native bf16: {cpu_has_bf16()} (the library's default reader uses bf16 only then; "
             f"shipped reader runs {'bf16' if reader.use_bf16 else 'fp32'} here)"]

    for size in sizes:
        if size == 0:
            assistant, tmp = base, None
        else:
            started = time.perf_counter()
            sources = c.squad_sources(size)
            tmp = tempfile.TemporaryDirectory(prefix="qa-bench-latency-")
            log.info("adding %d SQuAD articles to a temporary index (embedding their passages)", len(sources))
            extended, _ = building.add(base.index, sources, base.embedder)
            index_store.save(extended, Path(tmp.name) / "index")
            assistant = Assistant.load(Path(tmp.name) / "index", reader=reader)
            log.info("built %d passages in %.1f s", len(assistant.index), time.perf_counter() - started)
            if len(sources) < size:
                notes.append(f"only {len(sources)} SQuAD articles were available for corpus size {size}")
            for row in rows[:2]:  # warm the BM25 model of this index
                assistant.ask(row["question"], history=row["history"] or None)
        n_passages = len(assistant.index)
        log.info("corpus +%d articles (%d passages): pipeline fp32", size, n_passages)
        pipe = run_pipeline(assistant, rows, args.repeats)
        pipe_row = summarize("pipeline fp32 (hybrid top-%d)" % assistant.settings.top_k, size, n_passages, pipe)
        results.append(pipe_row)
        if not args.no_whole:
            sub = rows if size == 0 else rows[: args.baseline_questions]
            reps = args.repeats if size == 0 else args.baseline_repeats
            log.info("corpus +%d articles: whole-corpus reading on %d questions x %d", size, len(sub), reps)
            whole = summarize("whole corpus, no retrieval, fp32", size, n_passages, run_whole_corpus(assistant, sub, reps))
            # The pipeline on the same questions, for a like-for-like ratio (first pass only when subset).
            ids = {r["id"] for r in sub}
            same = {"samples": [s for s, i in zip(pipe["samples"], [r["id"] for r in rows] * args.repeats) if i in ids],
                    "per_question": [p for p in pipe["per_question"] if p["id"] in ids]}
            same_row = summarize("pipeline fp32, same questions", size, n_passages, same)
            whole["ratio_vs_pipeline"] = c.ratio(whole["median_ms"], same_row["median_ms"])
            whole["pipeline_same_questions_median_ms"] = same_row["median_ms"]
            whole["pipeline_same_questions_f1"] = same_row["f1"]
            if size != 0:
                same_row["ratio_vs_pipeline"] = 1.0
                results.append(same_row)
            results.append(whole)
        if size == 0 and not args.no_bf16:
            log.info("pipeline with bf16 autocast forced on")
            bf16_reader = shared_reader(base.settings)
            bf16_reader.use_bf16 = True  # bypass the native-bf16 check on purpose
            bf16 = Assistant(base.index, base.embedder, bf16_reader, base.settings)
            for row in rows[:2]:
                bf16.ask(row["question"], history=row["history"] or None)
            bf_row = summarize("pipeline bf16 autocast (forced)", size, n_passages, run_pipeline(bf16, rows, args.repeats))
            bf_row["ratio_vs_pipeline"] = c.ratio(bf_row["median_ms"], pipe_row["median_ms"])
            results.append(bf_row)
        pipe_row["ratio_vs_pipeline"] = 1.0
        if tmp is not None:
            tmp.cleanup()

    headers = ["config", "+articles", "passages", "questions", "calls", "median ms", "p95 ms", "retrieval ms",
               "reading ms", "rest ms", "x pipeline", "F1", "EM"]
    rows_out = [[r["config"], r["corpus_articles"], r["passages"], r["questions"], r["calls"], r["median_ms"],
                 r["p95_ms"], r["retrieval_median_ms"], r["reading_median_ms"], r["rest_median_ms"],
                 r.get("ratio_vs_pipeline"), r["f1"], r["em"]] for r in results]
    print(c.header("Warm answer latency (bench/latency.py)", env))
    print(c.table(headers, rows_out))
    print()
    print("retrieval/reading/rest: medians of the per-call split (Answer.timings); x pipeline: median time over the "
          "pipeline's median on the same questions.")
    if any(s > 0 for s in sizes):
        print(f"With extra articles, whole-corpus reading ran on the first {args.baseline_questions} questions "
              f"x {args.baseline_repeats} pass(es) only; 'pipeline fp32, same questions' is its like-for-like row.")
    for note in notes:
        print(note)
    c.write_json(args.json, {"script": "latency", "args": vars(args), "env": env, "notes": notes, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
