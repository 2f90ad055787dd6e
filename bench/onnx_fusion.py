"""A finished experiment: the reader's ONNX graph as shipped (ONNX Runtime's own fusions) against a fully fused one
(onnxruntime.transformers' BERT optimizer: one Attention op a layer, SkipLayerNormalization, EmbedLayerNormalization),
float32, per window.

The shipped export of a BERT-shaped reader keeps attention as plain products and softmax: ONNX Runtime's built-in
attention fusion does not match the graph transformers 5 traces. The BERT optimizer, run over the raw export,
fuses it fully. Both sessions (2 threads, spinning as shipped) run the same random windows in alternation; printed:
the op counts, the largest logit difference and the median time of each, per window shape.

Run: ``.venv/bin/python bench/onnx_fusion.py --reader minilm`` (BERT-shaped readers only: minilm, minilm-8).
"""

from __future__ import annotations

import argparse
import collections
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _common as c  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reader", default="minilm")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--engine", help="also through the engine: comma-separated JSONL question sets, each question "
                                         "answered with either graph in alternation, 3 timed passes")
    args = parser.parse_args(argv)
    import numpy as np
    import onnx
    import onnxruntime as ort
    from onnxruntime.transformers.optimizer import optimize_model

    import qa.onnx_reader as onnx_reader
    from qa.readers import merged_reader, reader_folder

    folder = merged_reader(reader_folder(args.reader))
    shipped = onnx_reader.onnx_file(str(folder), "onnx")
    work = Path(tempfile.mkdtemp(prefix="onnx-fusion-"))
    optimize = onnx_reader.optimize
    onnx_reader.optimize = lambda raw, final: (shutil.copy(raw, work / "raw.onnx"), optimize(raw, final))
    try:
        onnx_reader.export(str(folder), work / "export")
    finally:
        onnx_reader.optimize = optimize
    config = __import__("json").loads((Path(folder) / "config.json").read_text())
    fused = optimize_model(str(work / "raw.onnx"), model_type="bert", num_heads=config["num_attention_heads"],
                           hidden_size=config["hidden_size"], opt_level=0)
    fused.save_model_to_file(str(work / "fused.onnx"))

    def ops(path):
        return collections.Counter(n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node)

    def session(path):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = onnx_reader._torch_threads()
        options.log_severity_level = 3
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    print(f"shipped ({shipped}): {dict(ops(shipped).most_common(8))}")
    print(f"fully fused: {dict(ops(work / 'fused.onnx').most_common(8))}")
    a, b = session(shipped), session(work / "fused.onnx")
    names = [i.name for i in a.get_inputs()]
    rng = np.random.default_rng(0)
    for tokens, batch in ((140, 1), (140, 2), (300, 1)):
        ids = rng.integers(1000, 20000, size=(batch, tokens)).astype(np.int64)
        mask = np.ones_like(ids)
        mask[-1, tokens - 20:] = 0
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        feed = {k: v for k, v in feed.items() if k in names}
        diff = max(float(np.abs(x - y)[mask.astype(bool)].max()) for x, y in zip(a.run(None, feed), b.run(None, feed)))
        times = {"shipped": [], "fused": []}
        for i in range(args.calls):
            for name, s in (("shipped", a), ("fused", b)) if i % 2 == 0 else (("fused", b), ("shipped", a)):
                started = time.perf_counter()
                s.run(None, feed)
                times[name].append(1000 * (time.perf_counter() - started))
        m = {k: statistics.median(v) for k, v in times.items()}
        print(f"{batch} x {tokens} tokens: largest logit difference {diff:.1e}; shipped {m['shipped']:.1f} ms, "
              f"fully fused {m['fused']:.1f} ms, fused / shipped {m['fused'] / m['shipped']:.3f}")
    if args.engine:
        engine(args.reader, args.engine.split(","), a, b)
    shutil.rmtree(work, ignore_errors=True)
    return 0


def engine(reader: str, sets: list[str], shipped, fused, repeats: int = 3) -> None:
    """The engine's p50 / p95 / mean per question with the reader on either session, in alternation."""
    import json

    from qa import Assistant

    rows = [json.loads(line) for path in sets for line in Path(path).read_text(encoding="utf-8").splitlines()
            if line.strip()]
    assistant = Assistant.load(reader=reader, runtime="onnx")
    model = assistant.reader.model
    sessions = {"shipped": shipped, "fused": fused}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    answers: dict[str, list] = {k: [] for k in sessions}
    for rep in range(repeats + 1):
        for row in rows:
            for name in (("shipped", "fused") if rep % 2 == 0 else ("fused", "shipped")):
                model.session = sessions[name]
                started = time.perf_counter()
                answer = assistant.ask(row["question"], history=row.get("history") or [])
                if rep:
                    times[name].append(1000 * (time.perf_counter() - started))
                    answers[name].append((answer.text, round(answer.confidence, 4)))
    for name, values in times.items():
        print(f"engine, {name}: p50 {statistics.median(values):.1f} ms, p95 {c.percentile(values, 95):.1f}, "
              f"mean {statistics.mean(values):.1f} ({len(rows)} questions x {repeats})")
    print(f"engine, fused / shipped: p50 {statistics.median(times['fused']) / statistics.median(times['shipped']):.3f}, "
          f"mean {statistics.mean(times['fused']) / statistics.mean(times['shipped']):.3f}; answers and confidences "
          f"the same: {answers['fused'] == answers['shipped']}")


if __name__ == "__main__":
    raise SystemExit(main())
