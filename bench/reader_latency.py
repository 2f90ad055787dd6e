"""Reader latency: one question over 3 passages of up to 200 tokens (the reader issue's bar: <= 60 ms median).

Passages are consecutive runs of whole sentences of the shipped article, each at most ``--passage-tokens``
reader tokens; questions are the article dev set's. Each call is ``Reader.read(question, passages)``
(tokenisation, the forward pass of 3 windows in one batch, span decoding). Prints median, p95 and the
ratio against the bar, for fp32 and, for comparison, bf16 autocast (slow on CPUs without native bf16).

It also prints the floor this machine puts under that latency: the forward pass's floating-point work
(the encoder's matrix products and attention, counted from the model's config for the windows read)
divided by the fp32 matrix-product throughput measured here at the same shapes. A bar below that floor
cannot be met by this model in fp32 on this machine, whatever the code around it does.

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


def forward_flops(config, window_tokens: list[int]) -> float:
    """Floating-point operations of one encoder forward pass over windows of these lengths (padded to the longest).

    Per layer and token: the Q, K, V and output projections (4 h^2 multiply-adds) and the feed-forward
    (2 h i); per layer and window: attention scores and their weighted sum (2 L^2 h). A multiply-add is 2 FLOPs.
    """
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    width = max(window_tokens)
    tokens = width * len(window_tokens)
    per_layer = 2 * tokens * (4 * h * h + 2 * h * i) + 2 * len(window_tokens) * 2 * width * width * h
    return float(layers * per_layer)


def matmul_gflops(rows: int, hidden: int, intermediate: int, repeats: int = 30) -> float:
    """fp32 matrix-product throughput (GFLOP/s) at the reader's shapes: rows x hidden times hidden x intermediate
    and back, measured with torch's current thread count."""
    import torch

    pairs = [(torch.randn(rows, hidden), torch.randn(hidden, intermediate)),
             (torch.randn(rows, intermediate), torch.randn(intermediate, hidden)),
             (torch.randn(rows, hidden), torch.randn(hidden, hidden))]
    flops = sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs)
    for a, b in pairs:
        a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        for a, b in pairs:
            a @ b
    return flops * repeats / (time.perf_counter() - t) / 1e9


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
    enc = reader.tokenizer([questions[0]] * len(passages), passages, truncation="only_second",
                           max_length=reader.max_length)
    windows = [len(ids) for ids in enc["input_ids"]]
    config = reader.model.config
    gflop = forward_flops(config, windows) / 1e9
    rate = matmul_gflops(max(windows) * len(windows), config.hidden_size, config.intermediate_size)
    floor_ms = 1000 * gflop / rate
    print(f"\nfloor: {gflop:.2f} GFLOP a call (windows {windows}) / {rate:.0f} GFLOP/s fp32 matrix products "
          f"measured here = {floor_ms:.0f} ms of pure arithmetic; floor / 60 ms bar = {floor_ms / BAR_MS:.2f}")
    fp32 = results["fp32"]["median_ms"]
    print(f"the reader reaches {100 * floor_ms / fp32:.0f}% of that ceiling (fp32 median {fp32:.0f} ms)")
    if args.json:
        roofline = {"gflop_per_call": gflop, "windows": windows, "matmul_gflops": rate, "floor_ms": floor_ms}
        Path(args.json).write_text(json.dumps({"passage_tokens": lengths, **results, "roofline": roofline},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
