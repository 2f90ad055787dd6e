"""bf16 reading with the Linear weights held in bf16 (0.5.1) against autocast over float32 weights (before).

Autocast multiplies a reader's Linear layers in bf16 either way; with float32 weights it casts every weight to bf16
again on every call. Two readers of the same model are loaded in one process, one as the library runs it and one
whose weights stay float32 (the old way), and they read the same calls in alternation (which one goes first
alternates too), so that the machine's drift falls on both: 1, 2 or 3 passages of about 120 reader tokens (the
shipped index's passage length) from the shipped article, with three questions in turn. Printed per passage count:
median and p95 of each, the ratio of the medians, and whether every call gave the same spans and scores.

Only meaningful where bf16 autocast is on (a CPU with native bf16: ``qa.reader.bf16_pays``); elsewhere the two
readers are the same and the script says so.

Run: ``.venv/bin/python bench/bf16_weights.py --reader mpnet --rounds 60 --json bench/results/bf16_weights_mpnet.json``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c  # noqa: E402
from qa.config import DEFAULT_ARTICLE  # noqa: E402
from qa.reader import Reader, bf16_pays  # noqa: E402

QUESTIONS = ("Who is the commander of the Quds Force?", "What does Iran want in Iraq?", "When did the talks begin?")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", default="minilm", help="reader name or folder (default minilm)")
    parser.add_argument("--rounds", type=int, default=60, help="calls per reader (a third per passage count)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    if not bf16_pays():
        print("bf16 autocast is off on this CPU (no native bf16, or it does not pay): nothing to compare")
        return 0
    words = DEFAULT_ARTICLE.read_text(encoding="utf-8").split()
    passages = [" ".join(words[i * 90:(i + 1) * 90]) for i in range(3)]
    held = Reader.load(args.reader)
    casting = Reader.load(args.reader)
    casting._hold_linears = lambda dtype: None  # autocast casts its float32 weights on every call
    readers = {"held in bf16": held, "cast every call": casting}
    times: dict[str, dict[int, list[float]]] = {name: {1: [], 2: [], 3: []} for name in readers}
    same = True
    for reader in readers.values():
        reader.read(QUESTIONS[0], passages[:1])  # warm-up
    for k in range(args.rounds):
        question, n = QUESTIONS[k % 3], 1 + k % 3
        order = list(readers.items()) if k % 2 else list(readers.items())[::-1]
        spans = []
        for name, reader in order:
            started = time.perf_counter()
            reading = reader.read(question, passages[:n])
            times[name][n].append(1000 * (time.perf_counter() - started))
            spans.append([(s.text, s.score) for s in reading.spans] + [reading.no_answer_score])
        same = same and spans[0] == spans[1]
    print(f"reader {args.reader}, {args.rounds} calls each, alternating; same spans and scores in every call: {same}")
    print("| passages | held in bf16: median / p95 ms | cast every call: median / p95 ms | held / cast |")
    print("|---|---|---|---|")
    rows = []
    for n in (1, 2, 3):
        a, b = times["held in bf16"][n], times["cast every call"][n]
        ratio = statistics.median(a) / statistics.median(b)
        row = {"passages": n, "held_median_ms": statistics.median(a), "held_p95_ms": c.percentile(a, 95),
               "cast_median_ms": statistics.median(b), "cast_p95_ms": c.percentile(b, 95), "ratio": ratio}
        rows.append(row)
        print(f"| {n} | {row['held_median_ms']:.1f} / {row['held_p95_ms']:.1f} | {row['cast_median_ms']:.1f} / "
              f"{row['cast_p95_ms']:.1f} | {ratio:.3f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"reader": args.reader, "rounds": args.rounds, "same": same,
                                               "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
