"""Reader latency: one question over 3 passages of up to 200 tokens (the reader issue's bar: <= 60 ms median).

Passages are consecutive runs of whole sentences of the shipped article, each at most ``--passage-tokens``
reader tokens; questions are the article dev set's. Each call is ``Reader.read(question, passages)``
(tokenisation, the forward pass of 3 windows in one batch, span decoding). Prints median, p95 and the
ratio against the bar, for fp32 and, for comparison, bf16 autocast (slow on CPUs without native bf16).

Run: ``.venv/bin/python bench/reader_latency.py [--repeats 5] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from qa.chunking import sentence_spans  # noqa: E402
from qa.config import DEFAULT_ARTICLE, SHARED_DIR  # noqa: E402
from qa.reader import Reader  # noqa: E402

BAR_MS = 60.0


def passages_of(text: str, tokenizer, max_tokens: int, n: int) -> list[str]:
    """The first ``n`` runs of whole sentences (after the front matter) of at most ``max_tokens`` tokens."""
    out, start, end = [], None, None
    for s, e in sentence_spans(text)[2:]:
        if start is not None and len(tokenizer(text[start:e], add_special_tokens=False)["input_ids"]) > max_tokens:
            out.append(text[start:end])
            start = None
            if len(out) == n:
                break
        start = s if start is None else start
        end = e
    return out


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="reader folder (default: the shipped models/reader)")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the dev questions")
    parser.add_argument("--passage-tokens", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-bf16", action="store_true", help="skip the bf16 comparison")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    questions = [json.loads(line)["question"] for line in
                 (SHARED_DIR / "eval" / "article_dev_qa.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    results = {}
    configs = [("fp32", False)] + ([] if args.no_bf16 else [("bf16 autocast (forced)", True)])
    for name, bf16 in configs:
        reader = Reader.load(args.model)
        reader.use_bf16 = bf16
        passages = passages_of(DEFAULT_ARTICLE.read_text(encoding="utf-8"), reader.tokenizer, args.passage_tokens, 3)
        reader.read(questions[0], passages)  # warm-up
        times = []
        for _ in range(args.repeats if not bf16 else 1):
            for q in questions:
                t = time.perf_counter()
                reader.read(q, passages)
                times.append(1000 * (time.perf_counter() - t))
        results[name] = {"calls": len(times), "median_ms": statistics.median(times), "p95_ms": p95(times)}
    lengths = [len(reader.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in passages]
    print(f"reader latency, 1 question x 3 passages of {lengths} tokens, {args.threads} threads")
    print("| config | calls | median ms | p95 ms | median / 60 ms bar |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['calls']} | {r['median_ms']:.1f} | {r['p95_ms']:.1f} | {r['median_ms'] / BAR_MS:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"passage_tokens": lengths, **results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
