"""The shipped readers side by side: answer quality, warm latency per question, load time and memory.

Each reader runs in its own fresh process (so memory and load time are its own), over the same question set
through the whole engine (``Assistant.ask`` with the chat history, the shipped index, each reader's own
calibration), one warm-up pass and then ``--repeats`` timed passes. Printed: EM/F1, p50/p95 per question,
the process's resident memory after loading and after answering, and each reader's p50 as a ratio of the first
reader's. Whether bf16 autocast was used is printed per reader (``qa.reader.bf16_pays``: it is used only where
the CPU has native bf16 and a bf16 product measured faster than float32).

Run (about 3 minutes on 2 idle cores)::

    .venv/bin/python bench/readers.py --json bench/results/readers.json
    .venv/bin/python bench/readers.py --readers minilm,mpnet --set bench/data/article_test_qa.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import _common as c


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one(reader: str, path: str, repeats: int) -> dict:
    """Measure one reader in this process."""
    from qa import Assistant
    from qa.evaluation import score

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    started = time.perf_counter()
    assistant = Assistant.load(reader=reader)
    assistant.reader  # noqa: B018 - load it now
    load_s = time.perf_counter() - started
    loaded = rss_mib()
    times: list[float] = []
    answers = []
    for rep in range(repeats + 1):
        for row in rows:
            t = time.perf_counter()
            answer = assistant.ask(row["question"], history=row.get("history") or [])
            if rep:
                times.append(time.perf_counter() - t)
            if rep == 1:
                answers.append((answer.text, row.get("answers") or []))
    ems, f1s = zip(*(score(text, golds) for text, golds in answers))
    times.sort()
    return {
        "reader": reader, "version": assistant.info()["reader_version"], "bf16": assistant.reader.use_bf16,
        "threshold": assistant.settings.abstention_threshold(), "questions": len(rows), "repeats": repeats,
        "em": 100 * sum(ems) / len(ems), "f1": 100 * sum(f1s) / len(f1s),
        "p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))],
        "load_s": load_s, "rss_loaded_mib": loaded, "rss_after_mib": rss_mib(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", default="minilm,mpnet", help="comma-separated reader names or folders")
    parser.add_argument("--set", default=str(c.DEV_QA), help="JSONL question set (default: the article dev set)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.set, args.repeats)))
        return 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    results = []
    for reader in args.readers.split(","):
        out = subprocess.run([sys.executable, __file__, "--one", reader, "--set", args.set, "--repeats",
                              str(args.repeats)], capture_output=True, text=True, env=env, check=False)
        if out.returncode:
            sys.stderr.write(out.stderr[-3000:])
            raise SystemExit(f"reader {reader} failed")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    from qa.reader import cpu_has_bf16

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), os.uname().machine)
    print(f"cpu: {model}, {os.cpu_count()} cores, native bf16 flag {cpu_has_bf16()}; "
          f"set {args.set}, {args.repeats} timed passes")
    print(f"{'reader':<8} {'version':<10} {'bf16':<5} {'EM':>5} {'F1':>5} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'x p50':>6} {'load s':>6} {'RSS MiB':>8}")
    base = results[0]["p50_ms"]
    for r in results:
        print(f"{r['reader']:<8} {str(r['version']):<10} {str(r['bf16']):<5} {r['em']:5.1f} {r['f1']:5.1f} "
              f"{r['p50_ms']:7.1f} {r['p95_ms']:7.1f} {r['p50_ms'] / base:6.2f} {r['load_s']:6.1f} "
              f"{r['rss_after_mib']:8.0f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"set": args.set, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
