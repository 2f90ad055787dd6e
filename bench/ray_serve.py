"""Questions/s served on Ray Serve (issue #23): one process vs the assistant deployed with 1, 2... replicas.

The questions are the article development set (``../shared/eval/article_dev_qa.jsonl``, with their histories),
repeated to ``--questions``, asked by ``--clients`` threads at once, as web sessions do:

* ``local``: one :class:`qa.assistant.Assistant` in this process (``qa serve``), torch with ``--threads`` threads;
* ``ray-N``: :func:`qa.serving.serve_assistant` with N replicas of ``--cpus-per-replica`` CPUs on a local Ray of
  ``--num-cpus`` CPUs (or the cluster at ``--ray-address``): what ``qa serve --engine ray --replicas N`` runs.

It reports questions/s, p50/p95 latency per question, the speed-up over local, the time to deploy, and how many
answers differ from the local ones (text, citations or passages; scores within 1e-3).

Run::

    .venv/bin/python bench/ray_serve.py                             # 200 questions, 4 clients: local, ray-1, ray-2
    .venv/bin/python bench/ray_serve.py --questions 40 --replicas 1 --clients 2    # quick check
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import _common as c

log = logging.getLogger("bench.ray_serve")


def questions(path: str, n: int) -> list[tuple[str, list[str]]]:
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [(r["question"], list(r.get("history") or [])) for r in rows]
    return [items[i % len(items)] for i in range(n)]


def run(assistant, items, clients: int) -> tuple[float, list[float], list[dict]]:
    def one(item):
        t0 = time.perf_counter()
        answer = assistant.ask(item[0], history=item[1] or None)
        return time.perf_counter() - t0, answer.to_dict()

    assistant.ask(items[0][0])  # warm up (every replica warms on its first questions below)
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        done = list(pool.map(one, items))
    return time.perf_counter() - started, [d[0] for d in done], [d[1] for d in done]


def same(a: dict, b: dict) -> bool:
    strip = lambda d: {k: v for k, v in d.items() if k not in ("score", "candidates", "passages")}  # noqa: E731
    spans = lambda d: [(p["source"], p["start"], p["end"]) for p in d["passages"]]  # noqa: E731
    return strip(a) == strip(b) and abs(a["score"] - b["score"]) <= 1e-3 and spans(a) == spans(b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", help="index directory (default: the shipped index/)")
    parser.add_argument("--dev", default=str(c.DEV_QA), help="JSONL questions (default: the article dev set)")
    parser.add_argument("--questions", type=int, default=200, help="questions per configuration (default 200)")
    parser.add_argument("--clients", type=int, default=4, help="questions asked at once (default 4)")
    parser.add_argument("--replicas", default="1,2", help="replica counts, comma separated (default 1,2)")
    parser.add_argument("--no-local", action="store_true", help="skip the single-process run")
    parser.add_argument("--ray-address", help="a running cluster (default: a local Ray per configuration)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--cpus-per-replica", type=int, default=1, help="CPUs and torch threads per replica")
    args, env = c.start(parser, argv)
    from qa.assistant import Assistant
    from qa.serving import serve_assistant

    items = questions(args.dev, args.questions)
    results, reference = [], None
    local = Assistant.load(args.index)
    if not args.no_local:
        seconds, latencies, answers = run(local, items, args.clients)
        reference = answers
        results.append({"mode": "local", "replicas": 0, "seconds": seconds, "deploy_s": None,
                        "questions_per_s": len(items) / seconds, **c.summarize_ms(latencies), "differ": 0})
        log.info("%s", results[-1])
    for n in c.int_list(args.replicas):
        t0 = time.perf_counter()
        served = serve_assistant(args.index, replicas=n, address=args.ray_address, num_cpus=args.num_cpus,
                                 cpus_per_replica=args.cpus_per_replica, quiet=not args.verbose)
        deploy = time.perf_counter() - t0
        try:
            seconds, latencies, answers = run(served, items, args.clients)
        finally:
            served.close()
        differ = sum(not same(a, b) for a, b in zip(answers, reference)) if reference else None
        results.append({"mode": f"ray-{n}", "replicas": n, "seconds": seconds, "deploy_s": deploy,
                        "questions_per_s": len(items) / seconds, **c.summarize_ms(latencies), "differ": differ})
        log.info("%s", results[-1])
    first = results[0]
    print(c.header("Questions served on Ray Serve (bench/ray_serve.py)", env))
    print(f"{len(items)} questions, {args.clients} at once; local = one process with {args.threads} torch threads; "
          f"ray-N = N replicas of {args.cpus_per_replica} CPU.\n")
    print(c.table(["engine", "replicas", "questions/s", "x first", "p50 ms", "p95 ms", "deploy s",
                   "answers differing from local"],
                  [[r["mode"], r["replicas"], r["questions_per_s"], c.ratio(r["questions_per_s"],
                    first["questions_per_s"]), r.get("median_ms"), r.get("p95_ms"), r["deploy_s"], r["differ"]]
                   for r in results], digits=2))
    c.write_json(args.json, {"script": "ray_serve", "args": vars(args), "env": env, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
