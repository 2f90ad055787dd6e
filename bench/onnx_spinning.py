"""The readers' ONNX Runtime sessions with their threads spinning between calls (as shipped) against without.

ONNX Runtime's intra-op threads spin for a while after each call, waiting for more work; on 2 cores that took the
cores from the reader when the embedder's session did it (0.5.1: the embedder now runs on one thread without
spinning). This measures the same question for the readers' own sessions (``QA_RUNTIME=onnx``, what ``auto`` runs on
a CPU without bf16): one Assistant, two sessions per reader over the same ONNX file, one with
``session.intra_op.allow_spinning`` on (ONNX Runtime's default, as shipped) and one with it off, answering the same
questions in alternation (which goes first alternates too). Printed: p50, p95 and mean per question through the
whole engine, the ratio of the p50s, and whether every answer and confidence was the same.

Run: ``.venv/bin/python bench/onnx_spinning.py --reader minilm --json bench/results/onnx_spinning_minilm.json``
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


def session(path: Path, threads: int, spinning: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", default="minilm", help="minilm, mpnet or auto (default minilm)")
    parser.add_argument("--set", default=str(c.DEV_QA), help="JSONL question set (default: the article dev set)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes over the set (one warm-up pass first)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    from qa import Assistant
    from qa.onnx_reader import _torch_threads

    rows = [json.loads(line) for line in Path(args.set).read_text(encoding="utf-8").splitlines() if line.strip()]
    assistant = Assistant.load(reader=args.reader, runtime="onnx")
    readers = [assistant.reader] + ([assistant.rereader] if assistant.rereader is not None else [])
    threads = _torch_threads()
    sessions = {name: [session(r.model.path, threads, spin) for r in readers]
                for name, spin in (("spinning", True), ("not spinning", False))}
    times: dict[str, list[float]] = {name: [] for name in sessions}
    answers: dict[str, list] = {name: [] for name in sessions}
    for rep in range(args.repeats + 1):
        for row in rows:
            for name in (list(sessions) if rep % 2 == 0 else list(sessions)[::-1]):
                for reader, s in zip(readers, sessions[name]):
                    reader.model.session = s
                started = time.perf_counter()
                answer = assistant.ask(row["question"], history=row.get("history") or [])
                if rep:
                    times[name].append(1000 * (time.perf_counter() - started))
                    answers[name].append((answer.text, round(answer.confidence, 5)))
    same = answers["spinning"] == answers["not spinning"]
    print(f"reader {args.reader} on ONNX Runtime ({threads} threads), {len(rows)} questions x {args.repeats}, "
          f"alternating; same answers and confidences: {same}")
    result = {"reader": args.reader, "threads": threads, "set": args.set, "repeats": args.repeats, "same": same}
    for name, values in times.items():
        result[name] = {"p50_ms": statistics.median(values), "p95_ms": c.percentile(values, 95),
                        "mean_ms": statistics.mean(values)}
        print(f"{name:>13}: p50 {result[name]['p50_ms']:.1f} ms, p95 {result[name]['p95_ms']:.1f}, "
              f"mean {result[name]['mean_ms']:.1f}")
    result["ratio_p50"] = result["not spinning"]["p50_ms"] / result["spinning"]["p50_ms"]
    print(f"not spinning / spinning, p50: {result['ratio_p50']:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
