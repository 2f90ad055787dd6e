"""The shipped readers side by side, per runtime: answer quality, warm latency per question, load time and memory.

Each reader x runtime (``--runtimes``: ``torch``, ``onnx``, ``onnx-int8``, ``auto``; see :mod:`qa.runtime`) runs in
its own fresh process (so memory and load time are its own), over the same question set through the whole engine
(``Assistant.ask`` with the chat history, the shipped index, each reader's own calibration), one warm-up pass and
then ``--repeats`` timed passes. Printed: EM/F1, p50/p95 per question, the process's resident memory after loading
and after answering, and each row's p50 as a ratio of the first row's. Whether bf16 autocast was used is printed per
row (``qa.reader.bf16_pays``: only for torch, where the CPU has native bf16 and a bf16 product measured faster).

``--cold-start N`` also times N cold starts of ``qa ask`` per reader x runtime (median), as ``bench/cold_start.py``
does for the configured reader.

``--f1 squad1,xquad,squad2`` also scores each reader x runtime alone (``qa.training.evaluate``'s scoring, 256-token
windows, stride 96) on a seeded sample of SQuAD v1.1 dev (``--sample``, default 1,000), XQuAD-en and the held-out
(odd-numbered) articles of SQuAD 2.0 dev (threshold calibrated on the even ones; ``--squad2-limit`` reads only the
first N questions), and prints each F1's difference from the first runtime's: the int8 gate (no F1 may drop by
more than 0.5).

Run (about 3 minutes on 2 idle cores for the latency part; the F1 part takes far longer)::

    .venv/bin/python bench/readers.py --json bench/results/readers.json
    .venv/bin/python bench/readers.py --readers minilm,mpnet --runtimes torch,onnx,onnx-int8
    .venv/bin/python bench/readers.py --readers minilm --runtimes onnx,onnx-int8 --no-latency --f1 squad1,xquad,squad2
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


def one(reader: str, runtime: str, path: str, repeats: int) -> dict:
    """Measure one reader on one runtime in this process, through the engine."""
    from qa import Assistant
    from qa.evaluation import score

    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    started = time.perf_counter()
    assistant = Assistant.load(reader=reader, runtime=runtime)
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
        "reader": reader, "runtime": assistant.reader.runtime, "asked_runtime": runtime,
        "version": assistant.info()["reader_version"], "bf16": assistant.reader.use_bf16,
        "threshold": assistant.settings.abstention_threshold(), "questions": len(rows), "repeats": repeats,
        "em": 100 * sum(ems) / len(ems), "f1": 100 * sum(f1s) / len(f1s),
        "p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))],
        "load_s": load_s, "rss_loaded_mib": loaded, "rss_after_mib": rss_mib(),
    }


def f1(reader: str, runtime: str, sets: list[str], sample: int | None, squad2_limit: int | None,
       limit: int | None = None) -> dict:
    """F1 of one reader alone on one runtime, on the gate sets (``qa.training.evaluate``'s scoring)."""
    from qa.reader import Reader
    from qa.training.evaluate import QA_DATA, squad_v1, squad_v2

    loaded = Reader.load(reader, runtime=runtime, max_length=256, stride=96)
    out: dict = {"reader": reader, "runtime": loaded.runtime, "bf16": loaded.use_bf16}
    started = time.perf_counter()
    if "squad1" in sets:
        out["squad1"] = squad_v1(loaded, QA_DATA / "squad-v1.1" / "dev-v1.1.json", limit, sample, 0)
    if "xquad" in sets:
        out["xquad"] = squad_v1(loaded, QA_DATA / "xquad-en" / "xquad.en.json", limit)
    if "squad2" in sets:
        out["squad2"] = squad_v2(loaded, QA_DATA / "squad-v2.0" / "dev-v2.0.json", limit or squad2_limit)
    out["seconds"] = time.perf_counter() - started
    return out


def run_one(flag: str, reader: str, runtime: str, args: argparse.Namespace, env: dict) -> dict:
    """Run this script's ``--one`` or ``--one-f1`` for one reader x runtime in a fresh process."""
    out = subprocess.run([sys.executable, __file__, flag, f"{reader}:{runtime}", "--set", args.set, "--repeats",
                          str(args.repeats), "--f1", args.f1 or "", "--sample", str(args.sample)]
                         + (["--squad2-limit", str(args.squad2_limit)] if args.squad2_limit else [])
                         + (["--limit", str(args.limit)] if args.limit else []),
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"reader {reader} on {runtime} failed")
    return json.loads(out.stdout.strip().splitlines()[-1])


def cold_starts(reader: str, runtime: str, n: int) -> dict:
    """``n`` cold starts of ``qa ask`` with this reader and runtime, after one untimed start that warms the disk
    cache (and makes any missing ONNX export)."""
    from cold_start import QUESTION, time_cli

    time_cli(QUESTION, runtime, reader)
    seconds = [time_cli(QUESTION, runtime, reader)[0] for _ in range(n)]
    return {"reader": reader, "runtime": runtime, "seconds": seconds, "median_s": statistics.median(seconds)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", default="minilm,mpnet", help="comma-separated reader names or folders")
    parser.add_argument("--set", default=str(c.DEV_QA), help="JSONL question set (default: the article dev set)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--runtimes", default="auto", help="comma-separated: torch, onnx, onnx-int8, auto")
    parser.add_argument("--no-latency", action="store_true", help="skip the engine latency runs")
    parser.add_argument("--f1", default="", help="also score each reader alone on these sets: squad1, xquad, squad2")
    parser.add_argument("--sample", type=int, default=1000, help="SQuAD v1.1 dev questions for --f1 (seeded)")
    parser.add_argument("--squad2-limit", type=int, help="--f1 reads only the first N SQuAD 2.0 dev questions")
    parser.add_argument("--limit", type=int, help="--f1 reads only the first N questions of every set (quick checks)")
    parser.add_argument("--cold-start", type=int, default=0, metavar="N",
                        help="also time N cold starts of `qa ask` per reader x runtime (bench/cold_start.py's CLI "
                             "timing: spawn to exit, nothing allowed on stderr) and print their median")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--one-f1", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one or args.one_f1:
        reader, _, runtime = (args.one or args.one_f1).partition(":")
        result = one(reader, runtime, args.set, args.repeats) if args.one else \
            f1(reader, runtime, args.f1.split(","), args.sample, args.squad2_limit, args.limit)
        print(json.dumps(result))
        return 0
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    pairs = [(r, rt) for r in args.readers.split(",") for rt in args.runtimes.split(",")]
    results = [] if args.no_latency else [run_one("--one", r, rt, args, env) for r, rt in pairs]
    scores = [run_one("--one-f1", r, rt, args, env) for r, rt in pairs] if args.f1 else []
    starts = [cold_starts(r, rt, args.cold_start) for r, rt in pairs] if args.cold_start else []
    from qa.onnx_reader import cpu_has_vnni
    from qa.reader import cpu_has_bf16

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), os.uname().machine)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"cpu: {model}, {os.cpu_count()} cores, native bf16 flag {cpu_has_bf16()}, VNNI {cpu_has_vnni()}; "
          f"load average at the end {' '.join(load)}")
    if results:
        print(f"set {args.set}, {args.repeats} timed passes")
        print(f"{'reader':<8} {'runtime':<9} {'version':<10} {'bf16':<5} {'EM':>5} {'F1':>5} {'p50 ms':>7} "
              f"{'p95 ms':>7} {'x p50':>6} {'load s':>6} {'RSS MiB':>8}")
        base = results[0]["p50_ms"]
        for r in results:
            print(f"{r['reader']:<8} {r['runtime']:<9} {str(r['version']):<10} {str(r['bf16']):<5} {r['em']:5.1f} "
                  f"{r['f1']:5.1f} {r['p50_ms']:7.1f} {r['p95_ms']:7.1f} {r['p50_ms'] / base:6.2f} "
                  f"{r['load_s']:6.1f} {r['rss_after_mib']:8.0f}")
    if scores:
        print(f"F1 of the reader alone (256-token windows; SQuAD v1.1 sample {args.sample}, seed 0); "
              "in brackets: the difference from the reader's first runtime")
        sets = [s for s in ("squad1", "xquad", "squad2") if s in args.f1.split(",")]
        print(f"{'reader':<8} {'runtime':<9} " + " ".join(f"{s:>16}" for s in sets) + f" {'seconds':>8}")
        first: dict[str, dict] = {}
        for r in scores:
            ref = first.setdefault(r["reader"], r)
            cells = [f"{r[s]['f1']:6.2f} ({r[s]['f1'] - ref[s]['f1']:+5.2f})" for s in sets]
            print(f"{r['reader']:<8} {r['runtime']:<9} " + " ".join(f"{c:>16}" for c in cells)
                  + f" {r['seconds']:8.0f}")
    if starts:
        print(f"cold start of `qa ask` (spawn to exit, median of {args.cold_start}, warm disk cache)")
        for r in starts:
            print(f"{r['reader']:<8} {r['runtime']:<9} {r['median_s']:6.2f} s  (each: "
                  f"{', '.join(f'{t:.2f}' for t in r['seconds'])})")
    if args.json:
        Path(args.json).write_text(json.dumps({"set": args.set, "cpu": model, "bf16_flag": cpu_has_bf16(),
                                               "vnni": cpu_has_vnni(), "load_average_end": load,
                                               "results": results, "f1": scores, "cold_start": starts},
                                              indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
