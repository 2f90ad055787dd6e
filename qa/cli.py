"""The ``qa`` command: argument parsing and printing only; the work is done by :mod:`qa.assistant`.

Errors print one line on stderr (``qa: error: ...``) and exit with status 1 (2 for usage errors).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

EXIT_ERROR = 1


def _settings(args: argparse.Namespace) -> dict:
    out = {}
    if getattr(args, "top_k", None):
        out["top_k"] = args.top_k
    if getattr(args, "reader", None):
        out["reader"] = args.reader
    if getattr(args, "retrieval", None):
        out["retrieval"] = args.retrieval
    return out


def _load(args: argparse.Namespace):
    from qa.assistant import Assistant

    return Assistant.load(args.index, **_settings(args))


def cmd_ask(args: argparse.Namespace) -> int:
    assistant = _load(args)
    answer = assistant.ask(args.question, history=args.history or None)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    for notice in answer.notices:
        print(f"note: {notice}")
    if answer.text is None:
        print("The indexed text does not answer this question.")
        if answer.passages:
            p = answer.passages[0].passage
            print(f"Closest passage ({assistant.source(p.source_id).title}, chars {p.start}-{p.end}):")
            print(f"  {p.text[:300]}")
        return 0
    c = answer.citations[0]
    print(f"{answer.text}  (confidence {answer.score:.0%})")
    print(f"[1] {c.title} — {c.origin}, characters {c.start}-{c.end}")
    quote = c.quote[: c.start - c.quote_start] + "[[" + answer.text + "]]" + c.quote[c.end - c.quote_start:]
    print(f"    \"{quote}\"")
    return 0


def _print_report(report, seconds: float, index) -> None:
    changes = getattr(report, "changes", {})
    for kind in ("added", "replaced", "unchanged"):
        for origin in changes.get(kind, []):
            print(f"{kind:9} {origin}")
    for item in report.skipped:
        print(f"skipped   {item.origin}: {item.reason}")
    changed = len(changes.get('added', [])) + len(changes.get('replaced', []))
    print(f"{changed} source{'s' if changed != 1 else ''} added or replaced, "
          f"{len(report.skipped)} skipped, {len(index.sources)} sources and {len(index)} passages in "
          f"{index.path} ({seconds:.1f} s)")


def cmd_index_build(args: argparse.Namespace) -> int:
    from qa import building, index as index_store
    from qa.assistant import shared_embedder
    from qa.config import DEFAULT_INDEX_DIR, Settings
    from qa.sources import load_sources

    started = time.perf_counter()
    settings = Settings.from_env()
    path = Path(args.index or DEFAULT_INDEX_DIR)
    report = load_sources(args.sources, glob=args.glob, allow_private=args.allow_private)
    if not report.sources:
        reasons = "; ".join(f"{s.origin}: {s.reason}" for s in report.skipped) or "nothing given"
        raise SystemExit(f"qa: error: no readable source ({reasons}); the index at {path} is unchanged")
    embedder = shared_embedder(settings.embedder)
    with index_store.write_lock(path):
        new = building.build(report.sources, embedder, settings.chunk_tokens, settings.chunk_overlap_tokens,
                             progress=not args.quiet)
        index_store.save(new, path, lock=False)
    report.changes = {"added": [s.origin for s in report.sources], "unchanged": [], "replaced": []}
    _print_report(report, time.perf_counter() - started, new)
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    assistant = _load(args)
    report = assistant.add_sources(args.sources, glob=args.glob, allow_private=args.allow_private,
                                   progress=not args.quiet)
    _print_report(report, time.perf_counter() - started, assistant.index)
    return 0


def cmd_index_remove(args: argparse.Namespace) -> int:
    assistant = _load(args)
    title = assistant.source(args.source_id).title if args.source_id in assistant.index.sources else None
    assistant.remove_source(args.source_id)
    print(f"removed {args.source_id} ({title}); {len(assistant.index)} passages left")
    return 0


def cmd_index_list(args: argparse.Namespace) -> int:
    from qa import index as index_store
    from qa.config import DEFAULT_INDEX_DIR

    idx = index_store.load(args.index or DEFAULT_INDEX_DIR)
    if args.json:
        print(json.dumps(idx.manifest["sources"], ensure_ascii=False, indent=2))
        return 0
    for meta in idx.manifest["sources"]:
        print(f"{meta['id']}  {meta['passages']:5d} passages  {meta.get('added', '')}  {meta['title']}  <{meta['origin']}>")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    info = _load(args).info()
    if args.json:
        print(json.dumps(info, ensure_ascii=False, indent=2))
        return 0
    print(f"index:     {info['index']} (built {info['built']})")
    print(f"embedder:  {info['embedder']}")
    print(f"reader:    {info['reader']}")
    print(f"retrieval: {info['retrieval']}")
    print(f"passages:  {info['passages']}")
    for s in info["sources"]:
        print(f"source:    {s['id']}  {s['title']}  ({s['passages']} passages)  <{s['origin']}>")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.evaluation import evaluate_file, format_report

    report = evaluate_file(args.file, _load(args), k=args.recall_k)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from qa.web import launch

    launch(index_dir=args.index, host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qa", description="Ask questions about news articles; answers are "
                                     "spans of the text with citations.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_index(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--index", help="index directory (default: the shipped index/)")
        return p

    p = with_index(sub.add_parser("ask", help="answer a question"))
    p.add_argument("question")
    p.add_argument("--top-k", type=int, help="passages to read (default 3)")
    p.add_argument("--history", action="append", metavar="QUESTION",
                   help="an earlier question of the conversation (repeat, oldest first)")
    p.add_argument("--reader", help="question-answering model folder or id")
    p.add_argument("--retrieval", choices=["dense", "bm25", "hybrid"])
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.set_defaults(func=cmd_ask)

    idx = sub.add_parser("index", help="build and change the index").add_subparsers(dest="index_command",
                                                                                    required=True)
    for name, func, text in (("build", cmd_index_build, "build a new index from these sources (replaces it)"),
                             ("add", cmd_index_add, "add sources to the index (unchanged ones are skipped)")):
        p = with_index(idx.add_parser(name, help=text))
        p.add_argument("sources", nargs="+", metavar="PATH_OR_URL")
        p.add_argument("--glob", default="**/*", help="files to take from folders (default **/*)")
        p.add_argument("--allow-private", action="store_true", help="allow URLs on private or loopback addresses")
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        p.set_defaults(func=func)
    p = with_index(idx.add_parser("remove", help="remove a source by id"))
    p.add_argument("source_id")
    p.set_defaults(func=cmd_index_remove)
    p = with_index(idx.add_parser("list", help="list the indexed sources"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_index_list)

    p = with_index(sub.add_parser("info", help="models, sources, passage count, index location"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_info)

    p = with_index(sub.add_parser("eval", help="evaluate on a JSONL file of questions and gold answers"))
    p.add_argument("file")
    p.add_argument("--top-k", type=int)
    p.add_argument("--recall-k", type=int, default=3, help="k of retrieval recall@k (default 3)")
    p.add_argument("--reader")
    p.add_argument("--retrieval", choices=["dense", "bm25", "hybrid"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)

    p = with_index(sub.add_parser("serve", help="start the web chat"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("train-reader", help="train the extractive reader on SQuAD (hours of CPU)", add_help=False)
    p.set_defaults(func=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train-reader"]:
        from qa.training.train import main as train_main

        return train_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    if not args.verbose:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        if getattr(args, "quiet", False):
            os.environ.setdefault("TQDM_DISABLE", "1")
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    from qa.errors import USER_ERRORS

    try:
        return args.func(args)
    except USER_ERRORS as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """The ``qa`` console script: :func:`main`, then exit without the interpreter's teardown.

    Everything is written and closed by the time ``main`` returns; tearing down torch, FAISS and the
    tokenizers' threads only delays the exit by about 2 s (``bench/cold_start.py``).
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 1)


if __name__ == "__main__":
    entry()
