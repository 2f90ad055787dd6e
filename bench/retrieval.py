"""Retrieval quality on a mixed corpus: the shipped article plus SQuAD v1.1 dev articles as extra sources.

Each SQuAD question's gold passage is known by offsets: a retrieved passage is a hit when it comes from the
question's article and its ``[start, end)`` covers the gold answer's characters. Prints recall@k of dense,
BM25 and hybrid retrieval (reciprocal rank fusion, with and without each retriever's best passages kept:
``fusion_heads``), then, with ``--read N``, answer EM/F1 of the whole pipeline on N of the questions for each
hybrid variant (the shipped reader, top-3 passages), so that a retrieval change is judged by its answers too.

The questions are SQuAD v1.1 dev (not used to train the reader); nothing here is tuned on the article dev set.

Run: ``.venv/bin/python bench/retrieval.py [--articles 48] [--questions 2000] [--read 300] [--json out.json]``
"""

from __future__ import annotations

import argparse
import logging
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c  # noqa: E402

log = logging.getLogger("bench.retrieval")


def squad_gold(articles: list[dict], sources: list) -> list[dict]:
    """Questions with their source id and the gold answer's character span in that source's text.

    ``c.squad_sources`` writes an article as its title, a blank line, then the stripped paragraphs joined by blank
    lines; the span is mapped through the same layout and checked against the text.
    """
    rows = []
    for article, source in zip(articles, sources):
        text = source.text
        pos = len(article["title"].replace("_", " ")) + 2
        for para in article["paragraphs"]:
            context = para["context"]
            stripped = context.strip()
            lead = len(context) - len(context.lstrip())
            assert text[pos : pos + len(stripped)] == stripped, "paragraph layout differs from squad_sources"
            for qa in para["qas"]:
                a = qa["answers"][0]
                start = pos + a["answer_start"] - lead
                end = start + len(a["text"])
                if text[start:end] != a["text"]:
                    continue  # an answer cut by stripping: skip rather than guess
                rows.append({"question": qa["question"], "source_id": source.id, "start": start, "end": end,
                             "answers": [x["text"] for x in qa["answers"]]})
            pos += len(stripped) + 2
    return rows


def hit(passage, row: dict) -> bool:
    return passage.source_id == row["source_id"] and passage.start <= row["start"] and passage.end >= row["end"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--articles", type=int, default=48, help="SQuAD v1.1 dev articles added (48: all)")
    parser.add_argument("--questions", type=int, default=2000, help="SQuAD questions sampled for recall (seeded)")
    parser.add_argument("--read", type=int, default=300, help="questions answered end to end per hybrid variant")
    parser.add_argument("--k", type=c.int_list, default=[1, 3, 5, 10], help="recall depths, e.g. 1,3,5,10")
    parser.add_argument("--heads", type=c.int_list, default=[0, 1, 2], help="fusion_heads values to compare")
    parser.add_argument("--index-cache", default=None,
                        help="folder to keep the built index in and reuse on the next run (default: temporary)")
    parser.add_argument("--seed", type=int, default=0)
    args, env = c.start(parser, argv)

    from qa import Assistant, building
    from qa import index as index_store
    from qa.evaluation import score

    base = Assistant.load()
    articles = c.squad_articles(c.SQUAD_DEV)[: args.articles]
    sources = c.squad_sources(len(articles), first=c.SQUAD_DEV, then=c.SQUAD_DEV)
    cache = Path(args.index_cache) if args.index_cache else None
    tmp = None
    if cache and (cache / "manifest.json").exists():
        path = cache
    else:
        path = cache or Path(tempfile.mkdtemp(prefix="qa-bench-retrieval-")) / "index"
        tmp = None if cache else path.parent
        started = time.perf_counter()
        extended, _ = building.add(base.index, sources, base.embedder)
        index_store.save(extended, path)
        log.info("built %d passages in %.1f s", len(extended), time.perf_counter() - started)
    assistant = Assistant.load(path, reader=base.reader)
    retriever = assistant.retriever
    log.info("index: %d passages from %d sources", len(assistant.index), len(assistant.index.sources))

    gold = squad_gold(articles, sources)
    total = sum(len(p["qas"]) for a in articles for p in a["paragraphs"])
    if len(gold) < total:
        log.warning("%d of %d questions skipped: their answer offsets did not map onto the source text",
                    total - len(gold), total)
    random.Random(args.seed).shuffle(gold)
    rows = gold[: args.questions]
    questions = [r["question"] for r in rows]

    variants: list[tuple[str, str, int]] = [("dense", "dense", 0), ("BM25", "bm25", 0)]
    variants += [(f"hybrid RRF, heads {h}" if h else "hybrid RRF", "hybrid", h) for h in args.heads]
    results = []
    for name, mode, heads in variants:
        retriever.fusion_heads = heads
        recall = {}
        for k in args.k:
            found = retriever.search(questions, k, mode=mode)
            recall[k] = 100.0 * sum(any(hit(p.passage, r) for p in ps) for ps, r in zip(found, rows)) / len(rows)
        results.append({"variant": name, "mode": mode, "fusion_heads": heads,
                        **{f"recall@{k}": v for k, v in recall.items()}})
        log.info("%s: %s", name, recall)

    if args.read:
        sub = rows[: args.read]
        for res in results:
            if res["mode"] != "hybrid":
                continue
            retriever.fusion_heads = res["fusion_heads"]  # the assistant asks through this retriever
            ems, f1s, abstained, seconds = [], [], 0, []
            for r in sub:
                t = time.perf_counter()
                a = assistant.ask(r["question"])
                seconds.append(time.perf_counter() - t)
                abstained += a.text is None
                em, f1 = score(a.text, r["answers"])
                ems.append(em)
                f1s.append(f1)
            res.update({"read_questions": len(sub), "em": 100.0 * sum(ems) / len(sub),
                        "f1": 100.0 * sum(f1s) / len(sub), "abstained_pct": 100.0 * abstained / len(sub),
                        **{f"answer_{k}": v for k, v in c.summarize_ms(seconds).items()}})
            log.info("%s: answers EM %.1f F1 %.1f", res["variant"], res["em"], res["f1"])

    print(c.header("Retrieval on the article + SQuAD dev articles (bench/retrieval.py)", env))
    print(f"{len(assistant.index):,} passages from {len(assistant.index.sources)} sources; "
          f"{len(rows):,} SQuAD v1.1 dev questions (seed {args.seed}); a hit is a passage of the question's "
          f"article covering the gold answer's characters\n")
    headers = ["variant"] + [f"recall@{k}" for k in args.k]
    if args.read:
        headers += ["read", "EM", "F1", "abstained %", "answer p50 ms"]
    table = []
    for res in results:
        line = [res["variant"]] + [res[f"recall@{k}"] for k in args.k]
        if args.read:
            line += [res.get("read_questions", "-"), res.get("em", "-"), res.get("f1", "-"),
                     res.get("abstained_pct", "-"), res.get("answer_median_ms", "-")]
        table.append(line)
    print(c.table(headers, table))
    c.write_json(args.json, {"script": "bench/retrieval.py", "args": vars(args), "env": env, "results": results})
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
