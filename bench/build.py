"""Index build throughput (passages per second) and peak memory, for corpora of SQuAD paragraphs.

Each build runs in a fresh child process (so its peak memory is its own), which:

1. loads the embedder (timed, not part of the build) and picks SQuAD v1.1 train paragraphs, grouped into
   article-sized sources of ``--paragraphs-per-source`` consecutive paragraphs of one article (default 8,
   about 6,000 characters, the size of a news article), until chunking gives at least ``SIZE`` passages;
2. times ``qa.building.build`` (chunking + embedding + FAISS), and chunking alone on the side;
3. times ``qa.index.save`` to a temp dir (JSON, source texts, FAISS, checksums, fsync) and ``qa.index.load``;
4. times the BM25 model that hybrid retrieval builds lazily on the first question of every process
   (``Retriever._bm25_model``): build cost that is paid at query time;
5. reports peak resident memory (VmHWM: ``ru_maxrss`` of this process alone, see ``_common.max_rss_mb``) before
   the build (models and data loaded) and at the end.

Sizes are passages; ``--sizes 1k,5k`` runs each size ``--repeats`` times; the table gives medians and the cost per
passage relative to the first size.

Run::

    .venv/bin/python bench/build.py                      # 1k passages
    .venv/bin/python bench/build.py --sizes 1k,5k --repeats 2 --json bench/results/build.json
    .venv/bin/python bench/build.py --sizes 100          # quick check
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

log = logging.getLogger("bench.build")


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def child(size: int, per_source: int, threads: int) -> dict:
    """One build in this (child) process; returns the measurements."""
    c.set_threads(threads)
    started = time.perf_counter()
    from qa import building, index as index_store
    from qa.assistant import shared_embedder
    from qa.chunking import chunk_source
    from qa.config import Settings
    from qa.retrieval import Retriever
    from qa.types import Source

    settings = Settings.from_env()
    embedder = shared_embedder(settings.embedder)
    embedder.encode(["warm up"])
    model_seconds = time.perf_counter() - started

    paragraphs = c.squad_paragraphs(c.SQUAD_TRAIN)
    sources, n_passages, i = [], 0, 0
    chunk_seconds = 0.0
    while n_passages < size and i < len(paragraphs):
        title = paragraphs[i][0]
        group = []
        while i < len(paragraphs) and paragraphs[i][0] == title and len(group) < per_source:
            group.append(paragraphs[i][1])
            i += 1
        text = title + "\n\n" + "\n\n".join(group) + "\n"
        src = Source.from_text(text, title, f"squad-train:{title}:{i}")
        t0 = time.perf_counter()
        n_passages += len(chunk_source(src, settings.chunk_tokens, settings.chunk_overlap_tokens, embedder.count_tokens))
        chunk_seconds += time.perf_counter() - t0
        sources.append(src)
    rss_before = c.max_rss_mb()

    t0 = time.perf_counter()
    index = building.build(sources, embedder, settings.chunk_tokens, settings.chunk_overlap_tokens)
    build_seconds = time.perf_counter() - t0
    rss_built = c.max_rss_mb()
    with tempfile.TemporaryDirectory(prefix="qa-bench-build-") as tmp:
        path = Path(tmp) / "index"
        t0 = time.perf_counter()
        index_store.save(index, path)
        save_seconds = time.perf_counter() - t0
        disk = dir_size(path)
        t0 = time.perf_counter()
        loaded = index_store.load(path, embedder=embedder.name, dimension=embedder.dimension)
        load_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    Retriever(loaded, embedder)._bm25_model()
    bm25_seconds = time.perf_counter() - t0
    return {"target": size, "passages": len(index), "sources": len(sources), "chars": sum(len(s.text) for s in sources),
            "model_load_s": model_seconds, "build_s": build_seconds, "chunk_s": chunk_seconds,
            "passages_per_s": len(index) / build_seconds, "save_s": save_seconds, "load_s": load_seconds,
            "bm25_first_query_s": bm25_seconds, "disk_mb": disk / 2**20, "faiss": type(index.vectors).__name__,
            "rss_before_build_mb": rss_before, "rss_after_build_mb": rss_built, "peak_rss_mb": c.max_rss_mb()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1k", help="corpus sizes in passages, comma separated (default 1k)")
    parser.add_argument("--repeats", type=int, default=1, help="builds per size (default 1)")
    parser.add_argument("--paragraphs-per-source", type=int, default=8,
                        help="SQuAD paragraphs per source document (default 8)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    c.add_common_args(parser)
    args = parser.parse_args(argv)
    if args.child is not None:
        c.setup_logging(args.verbose)
        print(json.dumps(child(args.child, args.paragraphs_per_source, args.threads)))
        return 0
    c.setup_logging(args.verbose)
    env = c.environment()
    runs = []
    for size in c.int_list(args.sizes):
        for rep in range(args.repeats):
            log.info("building %d passages (run %d/%d) in a child process", size, rep + 1, args.repeats)
            cmd = [sys.executable, __file__, "--child", str(size), "--threads", str(args.threads),
                   "--paragraphs-per-source", str(args.paragraphs_per_source)]
            done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **c.OFFLINE_ENV})
            if done.returncode != 0:
                raise SystemExit(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            log.info("%s", runs[-1])
    results = []
    for size in c.int_list(args.sizes):
        mine = [r for r in runs if r["target"] == size]
        med = lambda key: statistics.median(r[key] for r in mine)  # noqa: E731
        results.append({"target": size, "runs": len(mine), **{k: med(k) for k in mine[0] if k not in ("target", "faiss")},
                        "faiss": mine[0]["faiss"], "build_s_max": max(r["build_s"] for r in mine)})
    first = results[0]
    for r in results:
        r["us_per_passage"] = 1e6 * r["build_s"] / r["passages"]
        r["cost_per_passage_vs_first"] = c.ratio(r["us_per_passage"], first["us_per_passage"])
    print(c.header("Index build (bench/build.py)", env))
    print(c.table(["passages", "sources", "runs", "build s", "build s max", "passages/s", "chunking s", "save s",
                   "load s", "BM25 1st query s", "disk MiB", "FAISS", "RSS before MiB", "peak RSS MiB",
                   "per-passage cost x first"],
                  [[r["passages"], r["sources"], r["runs"], r["build_s"], r["build_s_max"], r["passages_per_s"],
                    r["chunk_s"], r["save_s"], r["load_s"], r["bm25_first_query_s"], r["disk_mb"], r["faiss"],
                    r["rss_before_build_mb"], r["peak_rss_mb"], r["cost_per_passage_vs_first"]] for r in results],
                  digits=2))
    print()
    print("build s = qa.building.build (chunking + embedding + FAISS); chunking s is chunking alone, timed apart; "
          "RSS before = peak with models and data loaded; model load time is excluded "
          f"(median {statistics.median(r['model_load_s'] for r in runs):.1f} s per process).")
    c.write_json(args.json, {"script": "build", "args": vars(args), "env": env, "results": results, "runs": runs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
