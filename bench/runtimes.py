"""The reader alone on each runtime, side by side: time per question and how often the answer changes.

One process loads the reader on torch in float32, torch with bf16 autocast (where the CPU has native bf16), ONNX
Runtime in float32 and ONNX Runtime in int8 (:mod:`qa.onnx_reader`), then reads each question's top passages
(retrieved once from the shipped index, the article dev set) with every runtime in turn, question by question, so
that a change in background load hits every runtime alike. Printed per runtime: p50 and p95 per question, the
p50 as a ratio of torch float32's (speed-up), and on how many questions the best span or the abstention decision
(margin against the reader's calibrated threshold) differs from torch float32's.

Run::

    .venv/bin/python bench/runtimes.py --reader mpnet --json bench/results/runtimes/reader-mpnet.json
    .venv/bin/python bench/runtimes.py --reader minilm --questions 6 --repeats 1      # quick check
"""

from __future__ import annotations

import argparse
import json
import time

import _common as c

RUNTIMES = ("torch-fp32", "torch-bf16", "onnx", "onnx-int8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reader", default="minilm", help="a shipped reader's name (default minilm)")
    parser.add_argument("--questions", type=int, default=21, help="first N questions of the article dev set")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes (after one warm-up)")
    args, info = c.start(parser, argv)
    from qa.assistant import Assistant
    from qa.onnx_reader import OnnxQAModel
    from qa.reader import Reader

    assistant = Assistant.load()
    rows = [json.loads(line) for line in c.DEV_QA.read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [(r["question"], [p.passage.text for p in assistant.retrieve(r["question"])])
             for r in rows[:args.questions]]
    threshold = assistant.settings.replace(reader=args.reader).abstention_threshold()
    readers = {}
    for name in RUNTIMES:
        reader = Reader.load(args.reader, runtime=name.split("-")[0] if name.startswith("torch") else name,
                             use_bf16=name == "torch-bf16")
        if name == "torch-bf16" and not reader.use_bf16:
            continue  # no native bf16 here: the same as float32
        if reader.runtime != "torch":
            reader.model = OnnxQAModel(reader.model.path, reader.runtime, threads=args.threads)
        readers[name] = reader
    times: dict[str, list[float]] = {k: [] for k in readers}
    answers: dict[str, list[tuple]] = {k: [] for k in readers}
    for rep in range(args.repeats + 1):
        for question, passages in items:
            for name, reader in readers.items():
                started = time.perf_counter()
                reading = reader.read(question, passages)
                if rep:
                    times[name].append(time.perf_counter() - started)
                if rep == 0:
                    answers[name].append((reading.spans[0].text if reading.spans else None,
                                          reading.margin >= threshold))
    base = c.summarize_ms(times["torch-fp32"])["median_ms"]
    results = []
    for name in readers:
        s = c.summarize_ms(times[name])
        results.append({"runtime": name, **s, "speed-up": c.ratio(base, s["median_ms"]),
                        "span changed": sum(a[0] != b[0] for a, b in zip(answers[name], answers["torch-fp32"])),
                        "abstention changed": sum(a[1] != b[1] for a, b in zip(answers[name], answers["torch-fp32"])),
                        "answers": answers[name]})
    print(c.header(f"The reader {args.reader} alone per runtime (bench/runtimes.py), {len(items)} questions x "
                   f"{args.repeats} passes", info))
    print(c.table(["runtime", "n", "p50 ms", "p95 ms", "x torch fp32", "span changed", "abstention changed"],
                  [[r["runtime"], r["n"], r["median_ms"], r["p95_ms"], r["speed-up"], r["span changed"],
                    r["abstention changed"]] for r in results], digits=2))
    c.write_json(args.json, {"script": "runtimes", "args": vars(args), "env": info, "threshold": threshold,
                             "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
