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
    if answer.kind == "key_sentences" and answer.citations:
        _print_key_sentences(answer)
        return 0
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


def _print_key_sentences(answer) -> None:
    """A whole-document answer: the source, then each key sentence with its number and offsets."""
    first = answer.citations[0]
    print(f"Key sentences of {first.title} — {first.origin}:")
    for number, c in enumerate(answer.citations, start=1):
        print(f"[{number}] characters {c.start}-{c.end}")
        print(f"    \"{c.quote}\"")


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


def _engine(args: argparse.Namespace, embedder_name: str):
    """The chunk-and-embed engine of ``--engine``, as a context manager: None (local) or a started Ray engine."""
    import contextlib

    if getattr(args, "engine", "local") != "ray":
        if getattr(args, "ray_address", None) or getattr(args, "ray_workers", None):
            from qa.config import ConfigError

            raise ConfigError("--ray-address and --ray-workers go with --engine ray")
        return contextlib.nullcontext()
    from qa.ray_engine import RayEngine

    return RayEngine(embedder_name, address=args.ray_address, workers=args.ray_workers, quiet=not args.loud)


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
    with index_store.write_lock(path), _engine(args, settings.embedder) as engine:
        new = building.build(report.sources, embedder, settings.chunk_tokens, settings.chunk_overlap_tokens,
                             progress=not args.quiet, engine=engine)
        index_store.save(new, path, lock=False)
    report.changes = {"added": [s.origin for s in report.sources], "unchanged": [], "replaced": []}
    _print_report(report, time.perf_counter() - started, new)
    return 0


def cmd_index_add(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if getattr(args, "engine", "local") == "ray":
        from qa.config import DEFAULT_INDEX_DIR, Settings
        from qa.ray_engine import add_sources

        embedder_name = Settings.from_env().embedder
        with _engine(args, embedder_name) as engine:
            report, index = add_sources(args.index or DEFAULT_INDEX_DIR, args.sources, engine, glob=args.glob,
                                        allow_private=args.allow_private, progress=not args.quiet,
                                        embedder_name=embedder_name)
        _print_report(report, time.perf_counter() - started, index)
        return 0
    _engine(args, "")  # refuses --ray-* options without --engine ray
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
    cascade = info.get("cascade")
    if cascade:
        print(f"reader:    {info['reader_label']}; the second rereads under confidence {cascade['cut']:g}")
        for name, path, threshold, screener, screen in zip(cascade["readers"], cascade["paths"],
                                                           cascade["no_answer_thresholds"], cascade["screeners"],
                                                           cascade["screen_margins"]):
            print(f"           {name}: {path}, no-answer threshold {threshold:g}"
                  + (f"; passages past the best screened by {screener} at margin {screen:g}"
                     if screen is not None else ""))
    else:
        screening = info.get("screening")
        print(f"reader:    {info['reader_label']}, {info['reader_path']}, no-answer threshold "
              f"{info['no_answer_threshold']:g}" + (f"; passages past the best screened by {screening['reader']} at "
                                                    f"margin {screening['margin']:g}" if screening else ""))
    print(f"retrieval: {info['retrieval']}")
    print(f"passages:  {info['passages']}")
    for s in info["sources"]:
        print(f"source:    {s['id']}  {s['title']}  ({s['passages']} passages)  <{s['origin']}>")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from qa.evaluation import evaluate_file, format_report

    if args.squad2:
        return _eval_squad2(args)
    if not args.file:
        raise SystemExit("qa eval: give a JSONL question file, or --squad2 for the SQuAD 2.0 benchmark")
    report = evaluate_file(args.file, _load(args), k=args.recall_k)
    print(json.dumps(report, indent=2, ensure_ascii=False) if args.json else format_report(report))
    return 0


def _eval_squad2(args: argparse.Namespace) -> int:
    """``qa eval --squad2``: SQuAD 2.0's held-out articles, through the engine or on the gold paragraph."""
    from qa.training import squad2

    settings = {k: v for k, v in _settings(args).items() if k != "reader"}
    questions, predictions, result = squad2.run(args.mode, args.part, args.reader, args.answerable,
                                                args.unanswerable, args.sample_seed, args.threshold, **settings)
    if args.predictions:
        squad2.write_predictions(args.predictions, questions, predictions)
    print(json.dumps(result, indent=2) if args.json else squad2.format_report(result))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from qa.web import launch

    served = None
    if getattr(args, "engine", "local") == "ray":  # the questions go to Ray Serve replicas (qa.serving)
        from qa.serving import serve_assistant

        served = serve_assistant(args.index, replicas=args.replicas or 2, address=args.ray_address,
                                 quiet=not args.loud)
    elif getattr(args, "replicas", None) or getattr(args, "ray_address", None):
        from qa.config import ConfigError

        raise ConfigError("--replicas and --ray-address go with --engine ray")
    try:
        demo = launch(index_dir=args.index, host=args.host, port=args.port, quiet=not args.loud,
                      prevent_thread_lock=True, assistant=served)
        logging.getLogger("qa.web").info("the chat is at %s (Ctrl+C stops it)", demo.local_url)
        demo.block_thread()
    finally:
        if served is not None:
            served.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    from qa import __version__

    parser = argparse.ArgumentParser(prog="qa", description="Ask questions about news articles; answers are "
                                     "spans of the text with citations.")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress to stderr, other libraries' messages and loading bars included")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_index(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--index", help="index directory (default: the shipped index/)")
        return p

    p = with_index(sub.add_parser("ask", help="answer a question"))
    p.add_argument("question")
    p.add_argument("--top-k", type=int, help="passages to read (default 3)")
    p.add_argument("--history", action="append", metavar="QUESTION",
                   help="an earlier question of the conversation (repeat, oldest first)")
    p.add_argument("--reader", help="reader name (minilm: fast; mpnet: accurate; auto: minilm, with mpnet rereading "
                   "where minilm is unsure) or question-answering model folder")
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
        p.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="chunk and embed here (local, the default) or on a Ray cluster (ray; see docs/ray.md)")
        p.add_argument("--ray-address", metavar="ADDR",
                       help="the Ray cluster (auto, HOST:6379 or ray://HOST:10001); default: a local Ray for this "
                            "command")
        p.add_argument("--ray-workers", type=int, metavar="N",
                       help="embedding workers on Ray, one CPU each (default: one per CPU of the cluster)")
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

    p = with_index(sub.add_parser("eval", help="evaluate on a JSONL file of questions and gold answers, or on "
                                              "SQuAD 2.0's held-out articles (--squad2)"))
    p.add_argument("file", nargs="?", help="a JSONL file of questions (question, answers, history)")
    p.add_argument("--squad2", action="store_true",
                   help="instead of a file: SQuAD 2.0 dev's held-out articles (qa.training.squad2; --index is not used)")
    p.add_argument("--top-k", type=int)
    p.add_argument("--recall-k", type=int, default=3, help="k of retrieval recall@k (default 3)")
    p.add_argument("--reader")
    p.add_argument("--retrieval", choices=["dense", "bm25", "hybrid"])
    p.add_argument("--json", action="store_true")
    from qa.training.squad2 import add_options

    add_options(p.add_argument_group("with --squad2"))
    p.set_defaults(func=cmd_eval)

    p = with_index(sub.add_parser("serve", help="start the web chat"))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="answer in this process (local, the default) or on Ray Serve replicas (ray; see docs/ray.md)")
    p.add_argument("--replicas", type=int, metavar="N", help="Ray Serve replicas of the assistant (default 2)")
    p.add_argument("--ray-address", metavar="ADDR", help="the Ray cluster (default: a local Ray for this command)")
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
    from qa import logs

    # Quiet by default; the web chat says what it loaded and where it listens. -v / QA_LOG_LEVEL=DEBUG: everything.
    try:
        args.loud = logs.configure(args.verbose, default=logging.INFO if args.command == "serve" else logging.WARNING)
    except ValueError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if not args.loud and getattr(args, "quiet", False):
        os.environ.setdefault("TQDM_DISABLE", "1")
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
