"""Index build throughput on Ray (issue #23): passages/s of ``qa.building.build``, local vs Ray with 1, 2... workers.

The corpus is SQuAD v1.1 train paragraphs grouped into article-sized sources (``--paragraphs-per-source``
consecutive paragraphs of one article, as ``bench/build.py`` does), until chunking gives at least ``--passages``
passages. Each configuration runs in a fresh child process, which builds the same sources:

* ``local``: ``qa.building.build`` in the process, torch with ``--threads`` threads (``qa index build``);
* ``ray-N``: the same call with ``engine=RayEngine(workers=N)`` (``qa index build --engine ray --ray-workers N``):
  a local Ray with ``--num-cpus`` CPUs started in the child (or the cluster at ``--ray-address``), N actors of
  ``--cpus-per-worker`` CPUs (and torch threads) each.

It reports, per configuration: the build time (chunking + embedding + FAISS; on Ray this includes starting the
actors, each loading the embedder, but not starting Ray, reported apart), passages/s and the speed-up over
local; the time the driver spent outside Ray (putting passages in order, the FAISS build: what does not scale
with workers); and, once, the FAISS build alone and the BM25 model that hybrid retrieval builds on the first
question of every serving process (neither is distributed). Each build is checked against the local one
(passages equal, vectors within 1e-5).

Run::

    .venv/bin/python bench/ray_build.py                                   # 20k passages: local, ray-1, ray-2
    .venv/bin/python bench/ray_build.py --passages 20k --json bench/results/ray_build.json
    .venv/bin/python bench/ray_build.py --passages 300 --workers 1,2      # quick check
    .venv/bin/python bench/ray_build.py --ray-address auto --workers 4,8 --no-local   # on a running cluster

On a machine shared with other jobs the times are inflated (the load average is in the header); with N
workers of 1 CPU on an N-core machine, local with N threads is the fair comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import subprocess
import sys
import time

import _common as c
from qa.ray_engine import SOURCES_PER_BATCH

log = logging.getLogger("bench.ray_build")


def make_sources(passages: int, per_source: int):
    """SQuAD train paragraphs grouped into sources until chunking gives ``passages`` passages; same every run."""
    from qa.assistant import shared_embedder
    from qa.chunking import chunk_source
    from qa.config import Settings
    from qa.types import Source

    settings = Settings.from_env()
    embedder = shared_embedder(settings.embedder)
    paragraphs = c.squad_paragraphs(c.SQUAD_TRAIN)
    sources, n, i = [], 0, 0
    while n < passages and i < len(paragraphs):
        title, group = paragraphs[i][0], []
        while i < len(paragraphs) and paragraphs[i][0] == title and len(group) < per_source:
            group.append(paragraphs[i][1])
            i += 1
        src = dataclasses.replace(Source.from_text(title + "\n\n" + "\n\n".join(group) + "\n", title,
                                                   f"squad-train:{title}:{i}"), added="2024-01-01T00:00:00Z")
        n += len(chunk_source(src, settings.chunk_tokens, settings.chunk_overlap_tokens, embedder.count_tokens))
        sources.append(src)
    return sources, embedder, settings


def child(args: argparse.Namespace) -> dict:
    """One build in this (child) process; returns the measurements."""
    import numpy as np

    from qa import building, index as index_store

    c.set_threads(args.threads)
    sources, embedder, settings = make_sources(args.passages, args.paragraphs_per_source)
    embedder.encode(["warm up"])
    mode = args.child
    out = {"mode": mode, "sources": len(sources)}
    if mode == "local":
        t0 = time.perf_counter()
        index = building.build(sources, embedder, settings.chunk_tokens, settings.chunk_overlap_tokens)
        out["build_s"] = time.perf_counter() - t0
        vectors = building._vectors_of(index)
        t0 = time.perf_counter()
        index_store.make_faiss(vectors)
        out["faiss_s"] = time.perf_counter() - t0
        from qa.retrieval import Retriever

        t0 = time.perf_counter()
        Retriever(index, embedder)._bm25_model()
        out["bm25_s"] = time.perf_counter() - t0
        np.save(args.reference, vectors)
        out["workers"] = 0
    else:
        from qa.ray_engine import RayEngine

        workers = int(mode.split("-", 1)[1])
        engine = RayEngine(embedder.name, address=args.ray_address, workers=workers,
                           cpus_per_worker=args.cpus_per_worker, num_cpus=args.num_cpus,
                           sources_per_batch=args.sources_per_batch, quiet=not args.verbose)
        t0 = time.perf_counter()
        engine.start()
        out["ray_start_s"] = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            index = building.build(sources, embedder, settings.chunk_tokens, settings.chunk_overlap_tokens,
                                   engine=engine)
            out["build_s"] = time.perf_counter() - t0
        finally:
            engine.close()
        out["driver_s"] = out["build_s"] - engine.last_run["seconds"]
        out["workers"] = engine.last_run["workers"]
        if os.path.exists(args.reference):
            reference = np.load(args.reference)
            vectors = building._vectors_of(index)
            out["max_abs_diff_vs_local"] = float(np.abs(reference - vectors).max()) \
                if reference.shape == vectors.shape else None
    out["passages"] = len(index)
    out["faiss"] = type(index.vectors).__name__
    out["passages_per_s"] = len(index) / out["build_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", default="20k", help="corpus size in passages (default 20k)")
    parser.add_argument("--workers", default="1,2", help="Ray worker counts, comma separated (default 1,2)")
    parser.add_argument("--no-local", action="store_true", help="skip the local build")
    parser.add_argument("--repeats", type=int, default=1, help="builds per configuration (default 1)")
    parser.add_argument("--paragraphs-per-source", type=int, default=8,
                        help="SQuAD paragraphs per source document (default 8)")
    parser.add_argument("--ray-address", help="a running cluster (default: a local Ray started per build)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray (default: all)")
    parser.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs and torch threads per worker (default 1)")
    parser.add_argument("--sources-per-batch", type=int, default=SOURCES_PER_BATCH,
                        help=f"sources per map_batches call on Ray (default {SOURCES_PER_BATCH}, as qa index build)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--reference", default="/tmp/articleqa-bench-ray-reference.npy", help=argparse.SUPPRESS)
    c.add_common_args(parser)
    args = parser.parse_args(argv)
    args.passages = c.int_list(args.passages)[0]
    c.setup_logging(args.verbose)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    env = c.environment()
    modes = ([] if args.no_local else ["local"]) + [f"ray-{n}" for n in c.int_list(args.workers)]
    if os.path.exists(args.reference):
        os.remove(args.reference)
    runs = []
    for mode in modes:
        for rep in range(args.repeats):
            log.info("%s: %d passages (run %d/%d) in a child process", mode, args.passages, rep + 1, args.repeats)
            cmd = [sys.executable, __file__, "--child", mode, "--passages", str(args.passages),
                   "--threads", str(args.threads), "--paragraphs-per-source", str(args.paragraphs_per_source),
                   "--cpus-per-worker", str(args.cpus_per_worker), "--sources-per-batch", str(args.sources_per_batch),
                   "--reference", args.reference]
            for flag, value in (("--ray-address", args.ray_address), ("--num-cpus", args.num_cpus)):
                if value is not None:
                    cmd += [flag, str(value)]
            if args.verbose:
                cmd.append("-v")
            done = subprocess.run(cmd, capture_output=True, text=True,
                                  env={**os.environ, **c.OFFLINE_ENV, "RAY_USAGE_STATS_ENABLED": "0"})
            if done.returncode != 0:
                raise SystemExit(f"{mode} failed ({done.returncode}):\n{done.stderr[-3000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            log.info("%s", runs[-1])
    results = []
    for mode in modes:
        mine = [r for r in runs if r["mode"] == mode]
        med = lambda key: statistics.median(r[key] for r in mine) if key in mine[0] else None  # noqa: E731
        results.append({"mode": mode, "runs": len(mine), "workers": mine[0]["workers"],
                        "passages": mine[0]["passages"], "sources": mine[0]["sources"], "build_s": med("build_s"),
                        "passages_per_s": med("passages_per_s"),
                        "driver_s": med("driver_s"), "ray_start_s": med("ray_start_s"),
                        "max_abs_diff_vs_local": max((r.get("max_abs_diff_vs_local") or 0.0) for r in mine)
                        if mode != "local" else None, "faiss": mine[0]["faiss"],
                        "faiss_s": med("faiss_s"), "bm25_s": med("bm25_s")})
    local = next((r for r in results if r["mode"] == "local"), None)
    for r in results:
        r["speedup_vs_local"] = c.ratio(r["passages_per_s"], local["passages_per_s"]) if local else None
    print(c.header("Index build on Ray (bench/ray_build.py)", env))
    print(f"{args.passages} passages requested; driver-side s = the part of a Ray build outside Ray (passages put in "
          "order, FAISS).\n")
    print(c.table(["engine", "workers", "passages", "sources", "runs", "build s", "passages/s", "x local",
                   "driver-side s", "Ray start s", "max abs diff vs local", "FAISS"],
                  [[r["mode"], r["workers"], r["passages"], r["sources"], r["runs"], r["build_s"], r["passages_per_s"],
                    r["speedup_vs_local"], r["driver_s"], r["ray_start_s"],
                    None if r["max_abs_diff_vs_local"] is None else f"{r['max_abs_diff_vs_local']:.1e}", r["faiss"]]
                   for r in results], digits=2))
    print()
    if local:
        print(f"Not distributed: the FAISS build took {local['faiss_s']:.5f} s and the BM25 model (built by each "
              f"serving process on its first hybrid question) {local['bm25_s']:.2f} s for {local['passages']} "
              "passages.")
    print(f"local = torch with {args.threads} threads in one process; ray-N = N actors of {args.cpus_per_worker} "
          "CPU each; build s includes the actors' start and model load, not Ray's start.")
    c.write_json(args.json, {"script": "ray_build", "args": vars(args), "env": env, "results": results, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
