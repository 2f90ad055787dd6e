"""Memory over many questions, in the engine alone (no web server): is resident memory flat, and if not, why?

Asks ``--questions`` questions from ``--threads`` threads at once (the dev-set questions with their histories,
then the same questions again with a few words dropped so that the texts, token counts and tensor shapes keep
changing) and samples, every 10% of the questions:

- the process's resident memory (VmRSS);
- the Python heap (``tracemalloc``: memory held by Python objects), with the top allocation sites that grew.

RSS growing while the Python heap stays flat is native memory: the C allocator's per-thread arenas
fragmenting, or a library cache. ``--arena-max N`` caps glibc's arenas (what the app does, see
``qa.memory``) to compare the two in one command::

    .venv/bin/python bench/memory.py --questions 1000 --threads 4
    .venv/bin/python bench/memory.py --questions 1000 --threads 4 --arena-max 0   # glibc's default arenas

Prints the samples and the growth from 20% of the questions to the end.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import DEV_QA, add_common_args, current_rss_mb, environment, set_threads, setup_logging, write_json  # noqa: E402


def questions(n: int) -> list[tuple[str, list[str] | None]]:
    """``n`` (question, history) pairs: the dev questions, then variants with one word dropped, cycling."""
    from qa.evaluation import read_rows

    rows = [(r["question"], r.get("history") or None) for r in read_rows(DEV_QA)]
    out: list[tuple[str, list[str] | None]] = []
    k = 0
    while len(out) < n:
        question, history = rows[k % len(rows)]
        words = question.split()
        drop = (k // len(rows)) % (len(words) + 1) - 1  # -1: the question itself
        if drop >= 0 and len(words) > 3:
            question = " ".join(words[:drop] + words[drop + 1:])
        out.append((question, history))
        k += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=4, help="concurrent askers (default 4)")
    parser.add_argument("--arena-max", type=int, default=None,
                        help="cap glibc malloc arenas at N (0: leave glibc's default); default: what the app does")
    parser.add_argument("--no-tracemalloc", action="store_true", help="skip the Python-heap tracing (faster)")
    add_common_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)

    from qa import memory

    cap = memory.DEFAULT_ARENAS if args.arena_max is None else args.arena_max
    arenas = memory.limit_arenas(cap) if cap > 0 else None
    set_threads(args.threads)
    from qa import Assistant

    assistant = Assistant.load()
    assistant.ask("Who is the commander of the Quds Force?")  # load everything before the first sample
    plan = questions(args.questions)
    if not args.no_tracemalloc:
        tracemalloc.start(10)
    samples: list[dict] = []
    snapshots = {}
    done = 0
    lock = threading.Lock()
    marks = {max(1, round(args.questions * f / 10)) for f in range(1, 11)}

    def ask(item):
        nonlocal done
        assistant.ask(item[0], history=item[1])
        with lock:
            done += 1
            if done in marks:
                heap = tracemalloc.get_traced_memory()[0] / 2**20 if tracemalloc.is_tracing() else float("nan")
                samples.append({"done": done, "rss_mb": round(current_rss_mb(), 1), "python_heap_mb": round(heap, 2)})
                if tracemalloc.is_tracing() and done in (min(marks, key=lambda m: abs(m - args.questions / 5)),
                                                         args.questions):
                    snapshots[done] = tracemalloc.take_snapshot()

    started = time.perf_counter()
    start_rss = current_rss_mb()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(ask, plan))
    seconds = time.perf_counter() - started

    samples.sort(key=lambda s: s["done"])
    at20 = next(s for s in samples if s["done"] >= args.questions / 5)
    end = samples[-1]
    result = {
        "environment": environment(), "questions": args.questions, "workers": args.workers, "threads": args.threads,
        "arena_max": arenas, "seconds": round(seconds, 1), "rss_before_mb": round(start_rss, 1),
        "samples": samples, "rss_growth_from_20pct_mb": round(end["rss_mb"] - at20["rss_mb"], 1),
        "python_heap_growth_from_20pct_mb": round(end["python_heap_mb"] - at20["python_heap_mb"], 2),
    }
    print(f"{args.questions} questions, {args.workers} workers, arenas {arenas or 'glibc default'}: "
          f"{seconds:.0f} s; RSS before {start_rss:.0f} MiB")
    print("done  RSS MiB  Python heap MiB")
    for s in samples:
        print(f"{s['done']:>4}  {s['rss_mb']:>7.1f}  {s['python_heap_mb']:>15.2f}")
    print(f"growth from 20% to the end: RSS {result['rss_growth_from_20pct_mb']:+.1f} MiB, "
          f"Python heap {result['python_heap_growth_from_20pct_mb']:+.2f} MiB")
    if len(snapshots) == 2:
        first, last = (snapshots[k] for k in sorted(snapshots))
        top = last.compare_to(first, "lineno")[:5]
        print("Python allocation sites that grew most:")
        for stat in top:
            print(f"  {stat.size_diff / 1024:+8.1f} KiB  {stat.traceback[0]}")
        result["top_growth"] = [f"{s.size_diff / 1024:+.1f} KiB {s.traceback[0]}" for s in top]
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
