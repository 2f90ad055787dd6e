"""Profile the hot path: where the time of a warm ``Assistant.ask`` goes, by function.

Loads the assistant, answers the dev questions once to warm up, then answers them ``--repeats`` more times under
``cProfile`` and prints the functions with the most own time and the most cumulative time, plus how often the
expensive steps ran per question (tokenizer calls, model forward passes, FAISS searches, BM25 queries), so a
repeated tokenisation, a model reload or a needless copy shows up as a count above one per question::

    .venv/bin/python bench/hot_path.py [--repeats 3] [--top 25] [--json PATH]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import DEV_QA, add_common_args, environment, set_threads, setup_logging, write_json  # noqa: E402

# (label, file name ending, function name): the calls counted per question.
COUNTED = [
    ("reader batches", "reader.py", "forward_windows"),
    ("tokenizer calls (any)", "tokenization_utils_base.py", "__call__"),
    ("FAISS searches", "class_wrappers.py", "replacement_search"),
    ("BM25 queries", "retrieval.py", "bm25"),
    ("embedder encodes", "embedding.py", "Embedder.encode"),
    ("model loads", "modeling_utils.py", "from_pretrained"),
]


def counts(stats: pstats.Stats, questions: int) -> dict[str, float]:
    """Calls per question of each COUNTED function (primitive calls, so recursion counts once)."""
    import inspect

    from qa.embedding import Embedder

    lines = {"Embedder.encode": inspect.getsourcelines(Embedder.encode)[1]}  # not its model's encode
    out = {}
    for label, file_end, name in COUNTED:
        func_name, line = name.rsplit(".", 1)[-1], lines.get(name)
        calls = sum(primitive for (file, lineno, func), (primitive, *_rest) in stats.stats.items()  # type: ignore[attr-defined]
                    if file.endswith(file_end) and func == func_name and line in (None, lineno))
        out[label] = round(calls / questions, 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="profiled passes over the dev questions")
    parser.add_argument("--top", type=int, default=25, help="functions listed per table")
    add_common_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    set_threads(args.threads)

    from qa import Assistant
    from qa.evaluation import read_rows

    rows = read_rows(DEV_QA)
    assistant = Assistant.load()
    for row in rows:  # warm-up: models, BM25 model, caches
        assistant.ask(row["question"], history=row["history"] or None)
    assistant._history_cache.clear()  # follow-ups re-answer their history, as in a fresh chat

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(args.repeats):
        for row in rows:
            assistant.ask(row["question"], history=row["history"] or None)
        assistant._history_cache.clear()
    profiler.disable()
    seconds = time.perf_counter() - started
    questions = args.repeats * len(rows)

    stats = pstats.Stats(profiler)
    per_question = counts(stats, questions)
    print(f"{questions} warm questions in {seconds:.1f} s ({1000 * seconds / questions:.0f} ms each, profiled)")
    print("calls per question: " + ", ".join(f"{k} {v:g}" for k, v in per_question.items()))
    tables = {}
    for key, title in (("tottime", "own time"), ("cumulative", "cumulative time")):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(key).print_stats(args.top)
        text = buffer.getvalue()
        tables[key] = text[text.find("ncalls"):] if "ncalls" in text else text
        print(f"\n== top {args.top} by {title} ==\n{tables[key]}")
    write_json(args.json, {"environment": environment(), "questions": questions, "seconds": round(seconds, 2),
                           "calls_per_question": per_question, "tables": tables})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
