"""The README's answer-quality table: `qa eval` on the article dev set for each retrieval variant, with
and without follow-up handling (chat history) and document fields (title/date/author card).

Every variant runs in one process with the same models (loaded once) and the shipped reader, and prints
one markdown row: EM, F1, follow-up F1, recall@3, citation accuracy, abstention precision/recall, latency.

Run: ``.venv/bin/python bench/eval_variants.py [--file ../shared/eval/article_dev_qa.jsonl] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TQDM_DISABLE", "1")

from qa import Assistant  # noqa: E402
from qa.config import SHARED_DIR  # noqa: E402
from qa.evaluation import evaluate_file  # noqa: E402

VARIANTS = [
    ("dense", dict(retrieval="dense")),
    ("BM25", dict(retrieval="bm25")),
    ("hybrid (RRF, each retriever's best kept)", dict(retrieval="hybrid")),
    ("hybrid, plain RRF", dict(retrieval="hybrid", fusion_heads=0)),
    ("hybrid, no history", dict(retrieval="hybrid", use_history=False)),
    ("hybrid, no document fields", dict(retrieval="hybrid", use_document_fields=False)),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=str(SHARED_DIR / "eval" / "article_dev_qa.jsonl"))
    parser.add_argument("--index", default=None, help="index directory (default: the shipped index/)")
    parser.add_argument("--json", help="write every report here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    Assistant.load(args.index).ask("warm up")  # load the models before timing anything
    print("| variant | EM | F1 | follow-up F1 | recall@3 | citation acc. | abstention P / R | p50 ms | p95 ms |")
    print("|---|---|---|---|---|---|---|---|---|")
    reports = {}
    for name, settings in VARIANTS:
        report = evaluate_file(args.file, Assistant.load(args.index, **settings), k=3)
        reports[name] = {k: v for k, v in report.items() if k != "misses"}
        print(f"| {name} | {report['em']:.1f} | {report['f1']:.1f} | {report['follow_up_f1']:.1f} | "
              f"{report['recall@3']:.1f}% | {report['citation_accuracy']:.1f}% | "
              f"{report['abstention_precision']:.0f}% / {report['abstention_recall']:.0f}% | "
              f"{report['latency_p50_ms']:.0f} | {report['latency_p95_ms']:.0f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
