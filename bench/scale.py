"""Retrieval at scale: FAISS (and BM25) build time, size, memory, per-query latency and recall@10, 1k to 1M passages.

What it measures, per corpus size (``--sizes``, default 1k,10k,100k,1m), each size in a fresh child process so
that its peak memory (VmHWM, the ``ru_maxrss`` of that process alone) is its own:

* **flat (exact)**: ``faiss.IndexFlatIP``, what ``qa.index.make_faiss`` builds up to ``qa.index.EXACT_LIMIT``
  passages; also the ground truth for recall.
* **HNSW as make_faiss builds it** (``make_faiss(vectors, exact_limit=0)``: M=32, efConstruction=80,
  efSearch=128 at the time of writing), searched with each ``--ef-search`` value; plus optional other
  ``--hnsw-m`` / ``--ef-construction`` settings for comparison. The ``chosen`` column marks what make_faiss
  picks at that size with the library default.
* per index: build seconds, bytes on disk (``faiss.write_index``), resident memory added (VmRSS after - before),
  per-query latency p50/p95 (one query at a time, as the app searches, ``--threads`` OpenMP threads), and
  recall@10 against exact search (share of the exact top-10 ids found in the index's top-10).
* **BM25** (hybrid retrieval's other half, ``qa.retrieval``) up to ``--bm25-max`` passages: model build time
  (the same tokenisation and ``bm25s`` calls as ``Retriever._bm25_model``, which runs on the first question of
  every process) and memory, and per-query latency through ``Retriever.bm25`` (depth 20, as hybrid top-3 uses),
  next to the same scores ranked with ``np.argpartition`` instead of a full ``np.argsort``.
* the embedder: passage embedding throughput and single-question encoding latency (constant in corpus size).

**Where the vectors come from.** Embedding 1M passages with MiniLM on 2 CPU cores takes many hours, so only the
first ``--embed-limit`` passages (default 20,000) are real: SQuAD v1.1 train paragraphs, grouped by article
(8 paragraphs per source), chunked by ``qa.chunking`` like the index does, and embedded with the configured
embedder (cached in ``--cache-dir``). Larger corpora are filled with **synthetic passages made by recombination**:
the vector of passage i+j is the normalised sum of the vectors of two real passages from different sources (the
embedding-space stand-in for a passage made of text from both), and its BM25 text is the first half of one passage
plus the second half of the other. Recall and latency on synthetic vectors approximate, not reproduce, a real
corpus of that size. Queries are real SQuAD v1.1 dev questions, embedded by the same embedder.

Run. The full default run needs about 4 GB of memory at 1M. Its time, estimated from runs at 10k and 100k on a
busy 2-core machine (1 thread): embedding 20k real passages ~10-30 min (12 passages/s measured under load; cached
afterwards), HNSW build at 1M ~10 min, 200 exact single-query searches at 1M ~30 s, the rest a few minutes::

    .venv/bin/python bench/scale.py --json bench/results/scale.json
    .venv/bin/python bench/scale.py --sizes 1k,10k,100k --embed-limit 20000
    .venv/bin/python bench/scale.py --sizes 1k,10k --embed-limit 2000 --queries 200   # quick check
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import _common as c

log = logging.getLogger("bench.scale")

K = 10
BM25_DEPTH = 20  # hybrid retrieval asks each retriever for max(4 * top_k, 20) passages


# -- the corpus (parent process) ----------------------------------------------------------------------


def real_passages(embedder, limit: int, per_source: int = 8) -> tuple[list[str], list[int]]:
    """Search texts (title + passage, as retrieval embeds them) of up to ``limit`` chunked SQuAD train passages,
    and the source number of each."""
    from qa.chunking import chunk_source
    from qa.config import Settings
    from qa.types import Source

    search_text = c.search_text_function()
    settings = Settings.from_env()
    paragraphs = c.squad_paragraphs(c.SQUAD_TRAIN)
    texts: list[str] = []
    owner: list[int] = []
    i = sources = 0
    while len(texts) < limit and i < len(paragraphs):
        title = paragraphs[i][0]
        group = []
        while i < len(paragraphs) and paragraphs[i][0] == title and len(group) < per_source:
            group.append(paragraphs[i][1])
            i += 1
        src = Source.from_text(title + "\n\n" + "\n\n".join(group) + "\n", title, f"squad-train:{title}:{i}")
        for p in chunk_source(src, settings.chunk_tokens, settings.chunk_overlap_tokens, embedder.count_tokens):
            texts.append(search_text(p, src))
            owner.append(sources)
        sources += 1
    return texts[:limit], owner[:limit]


def embed_cached(embedder, texts: list[str], cache: Path, what: str, batch: int = 256) -> tuple[np.ndarray, float]:
    """Vectors of ``texts`` (from the cache when it holds them) and the measured throughput (texts/s)."""
    key = hashlib.sha256(("\x00".join(texts) + embedder.name).encode()).hexdigest()[:16]
    file, meta = cache / f"{what}-{key}.npy", cache / f"{what}-{key}.json"
    if file.exists() and meta.exists():
        log.info("%s: %d vectors from the cache %s", what, len(texts), file)
        return np.load(file), json.loads(meta.read_text())["per_second"]
    log.info("%s: embedding %d texts", what, len(texts))
    started = time.perf_counter()
    parts = []
    for i in range(0, len(texts), batch):
        parts.append(embedder.encode(texts[i : i + batch]))
        if (i // batch) % 10 == 9:
            done = i + batch
            log.info("  %d/%d (%.1f/s)", done, len(texts), done / (time.perf_counter() - started))
    vectors = np.concatenate(parts) if parts else np.zeros((0, embedder.dimension), np.float32)
    per_second = len(texts) / (time.perf_counter() - started)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(file, vectors)
    meta.write_text(json.dumps({"n": len(texts), "per_second": per_second, "embedder": embedder.name}))
    return vectors, per_second


# -- one size (child process) ---------------------------------------------------------------------------


def make_corpus(base: np.ndarray, owner: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors: the real ones first, then normalised sums of two real ones from different sources.

    Returns the vectors and the (i, j) pairs of the synthetic rows."""
    real = min(n, len(base))
    vectors = np.empty((n, base.shape[1]), np.float32)
    vectors[:real] = base[:real]
    extra = n - real
    pairs = np.zeros((extra, 2), np.int64)
    rng = np.random.default_rng(seed)
    step = 100_000
    for at in range(0, extra, step):
        m = min(step, extra - at)
        i = rng.integers(0, len(base), m)
        j = rng.integers(0, len(base), m)
        same = owner[i] == owner[j]
        while same.any():
            j[same] = rng.integers(0, len(base), int(same.sum()))
            same = owner[i] == owner[j]
        v = base[i] + base[j]
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        vectors[real + at : real + at + m] = v
        pairs[at : at + m] = np.stack([i, j], axis=1)
    return vectors, pairs


def index_bytes(index) -> int:
    import faiss

    with tempfile.NamedTemporaryFile(suffix=".faiss") as tmp:
        faiss.write_index(index, tmp.name)
        return os.path.getsize(tmp.name)


def time_queries(search, items, warm: int = 5) -> list[float]:
    """Seconds of ``search(item)`` per item, one at a time, after ``warm`` untimed calls."""
    items = list(items)
    for item in items[:warm]:
        search(item)
    out = []
    for item in items:
        t0 = time.perf_counter()
        search(item)
        out.append(time.perf_counter() - t0)
    return out


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f[f >= 0]) & set(e)) / len(e) for f, e in zip(found, exact)]))


def child(args) -> dict:
    import faiss

    from qa.index import EXACT_LIMIT, make_faiss

    faiss.omp_set_num_threads(args.threads)
    work = Path(args.work)
    base = np.load(work / "base.npy")
    owner = np.load(work / "owner.npy")
    queries = np.load(work / "queries.npy")
    n = args.child
    rows: list[dict] = []
    t0 = time.perf_counter()
    vectors, pairs = make_corpus(base, owner, n, args.seed)
    real = min(n, len(base))
    log.info("size %d: %d real + %d synthetic vectors (%.1f s)", n, real, n - real, time.perf_counter() - t0)
    lat_q = [q[None, :] for q in queries[: args.latency_queries]]
    exact_limit = EXACT_LIMIT if args.exact_limit is None else args.exact_limit
    chosen_kind = "flat" if n <= exact_limit else "hnsw"

    def measure(name: str, build, params: dict, sweep: list[int] | None = None, exact=None):
        gc.collect()
        before = c.current_rss_mb()
        t = time.perf_counter()
        index = build()
        build_s = time.perf_counter() - t
        added = c.current_rss_mb() - before
        size = index_bytes(index)
        out = []
        for ef in sweep or [None]:
            if ef is not None:
                index.hnsw.efSearch = ef
            lat = c.summarize_ms(time_queries(lambda q: index.search(q, K), lat_q))
            _, found = index.search(queries, K)
            rec = 1.0 if exact is None else recall_at_k(found, exact)
            out.append({"size": n, "real": real, "synthetic": n - real, "index": name, **params, "efSearch": ef,
                        "build_s": build_s, "disk_mb": size / 2**20, "rss_added_mb": added,
                        "p50_ms": lat["median_ms"], "p95_ms": lat["p95_ms"], "recall@10": rec,
                        "peak_rss_mb": c.max_rss_mb()})
            log.info("  %s ef=%s: build %.1fs p50 %.2fms p95 %.2fms recall %.3f", name, ef, build_s,
                     lat["median_ms"], lat["p95_ms"], rec)
        return index, found, out

    def flat_build():
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return index

    flat, _, out = measure("flat", flat_build, {})
    _, exact = flat.search(queries, K)  # batched BLAS search: the ground truth
    for r in out:
        r["recall@10"] = 1.0
        r["chosen"] = chosen_kind == "flat"
    rows += out
    flat_p50 = out[0]["p50_ms"]
    del flat
    if args.hnsw_all or n > exact_limit:
        default_ef = None
        for m in args.hnsw_m:
            for efc in args.ef_construction:
                library = m == 32 and efc == 80

                def hnsw_build(m=m, efc=efc, library=library):
                    if library:  # exactly what the library builds above EXACT_LIMIT
                        return make_faiss(vectors, exact_limit=0)
                    index = faiss.IndexHNSWFlat(vectors.shape[1], m, faiss.METRIC_INNER_PRODUCT)
                    index.hnsw.efConstruction = efc
                    index.add(vectors)
                    return index

                name = "hnsw (make_faiss)" if library else "hnsw"
                index, _, out = measure(name, hnsw_build, {"M": m, "efConstruction": efc}, args.ef_search, exact)
                if library:
                    default_ef = make_faiss(np.zeros((1, vectors.shape[1]), np.float32), exact_limit=0).hnsw.efSearch
                    for r in out:
                        r["chosen"] = chosen_kind == "hnsw" and r["efSearch"] == default_ef
                rows += out
                del index
                gc.collect()
    for r in rows:
        r["x_flat_p50"] = c.ratio(r["p50_ms"], flat_p50)
    bm25 = None
    if args.bm25 and n <= args.bm25_max:
        bm25 = bm25_measure(work, n, real, pairs, args)
    return {"rows": rows, "bm25": bm25}


class _Stub:
    """The part of an Index that ``Retriever.bm25`` reads."""

    def __init__(self, n: int) -> None:
        self.passages = range(n)


def bm25_measure(work: Path, n: int, real: int, pairs: np.ndarray, args) -> dict:
    import bm25s

    from qa.retrieval import Retriever, tokenize

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    texts = json.loads((work / "texts.json").read_text(encoding="utf-8"))
    questions = json.loads((work / "questions.json").read_text(encoding="utf-8"))[: args.latency_queries]

    def corpus_texts():
        for t in texts[:real]:
            yield t
        for i, j in pairs:
            a, b = texts[i].split(), texts[j].split()
            yield " ".join(a[: len(a) // 2] + b[len(b) // 2 :])

    gc.collect()
    before = c.current_rss_mb()
    peak_before = c.max_rss_mb()
    t0 = time.perf_counter()
    corpus = [tokenize(t) or ["\x00"] for t in corpus_texts()]  # as Retriever._bm25_model
    tokenize_s = time.perf_counter() - t0
    model = bm25s.BM25()
    model.index(corpus, show_progress=False)
    build_s = time.perf_counter() - t0
    del corpus
    gc.collect()
    retriever = Retriever(_Stub(n), embedder=None)  # type: ignore[arg-type]
    retriever._bm25 = model
    library = c.summarize_ms(time_queries(lambda q: retriever.bm25([q], BM25_DEPTH), questions))

    def partitioned(q: str):
        words = [t for t in tokenize(q) if t in model.vocab_dict]
        if not words:
            return []
        scores = model.get_scores(words)
        k = min(BM25_DEPTH, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top])]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    faster = c.summarize_ms(time_queries(partitioned, questions))
    # Same scores in the same order (ids of tied scores may come in another order).
    same = all([x for _, x in retriever.bm25([q], BM25_DEPTH)[0]] == [x for _, x in partitioned(q)] for q in questions[:50])
    out = {"size": n, "build_s": build_s, "tokenize_s": tokenize_s, "rss_added_mb": c.current_rss_mb() - before,
           "peak_rss_added_mb": c.max_rss_mb() - peak_before, "p50_ms": library["median_ms"], "p95_ms": library["p95_ms"],
           "argpartition_p50_ms": faster["median_ms"], "argpartition_p95_ms": faster["p95_ms"],
           "argpartition_same_results": same}
    log.info("  bm25: build %.1fs, p50 %.2fms (argpartition %.2fms)", build_s, out["p50_ms"], out["argpartition_p50_ms"])
    return out


# -- main ----------------------------------------------------------------------------------------------


def estimate(rows: list[dict], bm25: list[dict], target: int) -> list[str]:
    """Rough extrapolations to ``target`` passages from the largest measured size."""
    lines = []
    hn = [r for r in rows if r["index"] == "hnsw (make_faiss)"]
    if hn:
        big = max(r["size"] for r in hn)
        if big < target:
            r = next(r for r in hn if r["size"] == big)
            scale = target / big * math.log(target) / math.log(big)
            lines.append(f"HNSW (make_faiss) build at {target:,}: ~{r['build_s'] * scale / 60:.0f} min "
                         f"(n log n from {r['build_s']:.1f} s at {big:,}); index ~{r['disk_mb'] * target / big:,.0f} MiB")
    flat = [r for r in rows if r["index"] == "flat"]
    if flat:
        big = max(r["size"] for r in flat)
        if big < target:
            r = next(r for r in flat if r["size"] == big)
            lines.append(f"flat search at {target:,}: p50 ~{r['p50_ms'] * target / big:.0f} ms (linear from "
                         f"{r['p50_ms']:.2f} ms at {big:,}); vectors {target * 384 * 4 / 2**20:,.0f} MiB")
    if bm25:
        b = max(bm25, key=lambda x: x["size"])
        if b["size"] < target:
            f = target / b["size"]
            lines.append(f"BM25 at {target:,}: first-question build ~{b['build_s'] * f / 60:.0f} min, "
                         f"~{b['peak_rss_added_mb'] * f / 1024:.1f} GiB peak, query p50 ~{b['p50_ms'] * f:.0f} ms "
                         f"(linear from {b['size']:,})")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1k,10k,100k,1m", help="corpus sizes in passages (default 1k,10k,100k,1m)")
    parser.add_argument("--embed-limit", type=int, default=20_000,
                        help="real (embedded) passages; larger sizes are filled by recombination (default 20000)")
    parser.add_argument("--queries", type=int, default=500, help="SQuAD dev questions for recall (default 500)")
    parser.add_argument("--latency-queries", type=int, default=200,
                        help="of those, timed one at a time (default 200)")
    parser.add_argument("--ef-search", default="16,32,64,128,256,512", help="HNSW efSearch values to sweep")
    parser.add_argument("--hnsw-m", default="32", help="HNSW M values (32 = make_faiss)")
    parser.add_argument("--ef-construction", default="80", help="HNSW efConstruction values (80 = make_faiss)")
    parser.add_argument("--exact-limit", type=int, help="the flat/HNSW threshold to mark as chosen "
                        "(default qa.index.EXACT_LIMIT)")
    parser.add_argument("--no-hnsw-all", dest="hnsw_all", action="store_false",
                        help="build HNSW only above the exact limit (default: at every size, for comparison)")
    parser.add_argument("--no-bm25", dest="bm25", action="store_false", help="skip BM25")
    parser.add_argument("--bm25-max", type=int, default=100_000,
                        help="largest size with BM25 measured (default 100k; its Python token lists need "
                             "~10 GB at 1M)")
    parser.add_argument("--cache-dir", default=str(Path(tempfile.gettempdir()) / "articleqa-bench-cache"),
                        help="where embeddings are cached between runs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    c.add_common_args(parser)
    args = parser.parse_args(argv)
    args.ef_search = [int(x) for x in args.ef_search.split(",") if x.strip()]
    args.hnsw_m = [int(x) for x in args.hnsw_m.split(",") if x.strip()]
    args.ef_construction = [int(x) for x in args.ef_construction.split(",") if x.strip()]
    c.setup_logging(args.verbose)
    if args.child is not None:
        print(json.dumps(child(args), default=float))
        return 0

    env = c.environment()
    c.set_threads(args.threads)
    from qa.assistant import shared_embedder
    from qa.config import Settings
    from qa.index import EXACT_LIMIT

    embedder = shared_embedder(Settings.from_env().embedder)
    cache = Path(args.cache_dir)
    texts, owner = real_passages(embedder, args.embed_limit)
    base, passages_per_s = embed_cached(embedder, texts, cache, "passages")
    rng = np.random.default_rng(args.seed)
    questions = c.squad_questions(c.SQUAD_DEV)
    questions = [questions[i] for i in rng.permutation(len(questions))[: args.queries]]
    qvecs, _ = embed_cached(embedder, questions, cache, "questions")
    embedder.encode(questions[:3])
    single = c.summarize_ms(time_queries(lambda q: embedder.encode([q]), questions[:50]))
    del embedder
    log.info("%d real passages (%.1f passages/s embedding), %d queries; question encoding p50 %.1f ms",
             len(texts), passages_per_s, len(questions), single["median_ms"])

    rows: list[dict] = []
    bm25_rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="qa-bench-scale-") as tmp:
        work = Path(tmp)
        np.save(work / "base.npy", base)
        np.save(work / "owner.npy", np.asarray(owner, np.int64))
        np.save(work / "queries.npy", qvecs)
        (work / "texts.json").write_text(json.dumps(texts), encoding="utf-8")
        (work / "questions.json").write_text(json.dumps(questions), encoding="utf-8")
        passthrough = ["--threads", str(args.threads), "--latency-queries", str(args.latency_queries),
                       "--ef-search", ",".join(map(str, args.ef_search)), "--hnsw-m", ",".join(map(str, args.hnsw_m)),
                       "--ef-construction", ",".join(map(str, args.ef_construction)), "--seed", str(args.seed),
                       "--bm25-max", str(args.bm25_max)]
        passthrough += [] if args.hnsw_all else ["--no-hnsw-all"]
        passthrough += [] if args.bm25 else ["--no-bm25"]
        passthrough += [] if args.exact_limit is None else ["--exact-limit", str(args.exact_limit)]
        for size in c.int_list(args.sizes):
            log.info("size %d in a child process", size)
            started = time.perf_counter()
            done = subprocess.run([sys.executable, __file__, "--child", str(size), "--work", str(work), *passthrough],
                                  stdout=subprocess.PIPE, text=True, env={**os.environ, **c.OFFLINE_ENV})
            if done.returncode != 0:
                raise SystemExit(f"size {size} failed with status {done.returncode} (see the log above)")
            out = json.loads(done.stdout.strip().splitlines()[-1])
            log.info("size %d done in %.0f s", size, time.perf_counter() - started)
            rows += out["rows"]
            if out["bm25"]:
                bm25_rows.append(out["bm25"])
            partial = {"script": "scale", "args": vars(args), "env": env, "rows": rows, "bm25": bm25_rows}
            c.write_json(args.json, partial)  # keep what is done if a later size is stopped

    print(c.header("Retrieval at scale (bench/scale.py)", env))
    print(f"Real passages: {len(texts):,} chunked SQuAD v1.1 train passages embedded at {passages_per_s:.1f} passages/s "
          f"(cached runs report the first run's rate). Beyond that, vectors are SYNTHETIC: normalised sums of two real "
          f"passage vectors from different sources. Queries: {len(questions)} SQuAD dev questions "
          f"({args.latency_queries} timed one at a time, {args.threads} threads). Question encoding p50 "
          f"{single['median_ms']:.1f} ms, p95 {single['p95_ms']:.1f} ms (not included below). qa.index.EXACT_LIMIT = "
          f"{EXACT_LIMIT:,}.\n")
    print(c.table(["passages", "synthetic", "index", "M", "efC", "efSearch", "chosen", "build s", "disk MiB",
                   "RSS added MiB", "peak RSS MiB", "p50 ms", "p95 ms", "x flat p50", "recall@10"],
                  [[r["size"], r["synthetic"], r["index"], r.get("M"), r.get("efConstruction"), r["efSearch"],
                    "yes" if r.get("chosen") else "", r["build_s"], r["disk_mb"], r["rss_added_mb"], r["peak_rss_mb"],
                    r["p50_ms"], r["p95_ms"], r["x_flat_p50"], r["recall@10"]] for r in rows], digits=3))
    if bm25_rows:
        print()
        print(c.table(["passages", "BM25 build s", "of which tokenising s", "RSS added MiB", "peak RSS added MiB",
                       "p50 ms (Retriever.bm25)", "p95 ms", "p50 ms (argpartition)", "p95 ms (argpartition)",
                       "same top-20"],
                      [[b["size"], b["build_s"], b["tokenize_s"], b["rss_added_mb"], b["peak_rss_added_mb"], b["p50_ms"],
                        b["p95_ms"], b["argpartition_p50_ms"], b["argpartition_p95_ms"], b["argpartition_same_results"]]
                       for b in bm25_rows], digits=2))
    advice = []
    hn = [r for r in rows if r["index"] == "hnsw (make_faiss)"]
    if hn:
        big = max(r["size"] for r in hn)
        at = [r for r in hn if r["size"] == big]
        ok = [r for r in at if r["recall@10"] >= 0.95 and r["p50_ms"] <= 20]
        lib = next((r for r in at if r.get("chosen")), None) or next((r for r in at if r["efSearch"] == 128), None)
        if lib:
            advice.append(f"At {big:,} passages make_faiss's HNSW (efSearch {lib['efSearch']}) gives recall@10 "
                          f"{lib['recall@10']:.3f} at p50 {lib['p50_ms']:.2f} ms.")
        if ok:
            best = min(ok, key=lambda r: r["efSearch"])
            advice.append(f"Smallest efSearch meeting recall@10 >= 0.95 and p50 <= 20 ms at {big:,}: "
                          f"{best['efSearch']} (recall {best['recall@10']:.3f}, p50 {best['p50_ms']:.2f} ms).")
        else:
            advice.append(f"No efSearch tried meets recall@10 >= 0.95 with p50 <= 20 ms at {big:,}.")
    for line in advice + estimate(rows, bm25_rows, 1_000_000):
        print(line)
    c.write_json(args.json, {"script": "scale", "args": vars(args), "env": env, "rows": rows, "bm25": bm25_rows,
                             "embedding_passages_per_s": passages_per_s, "question_encoding_ms": single,
                             "real_passages": len(texts), "advice": advice,
                             "estimates_1m": estimate(rows, bm25_rows, 1_000_000)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
