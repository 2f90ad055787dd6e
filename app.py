"""Start the web chat: ``python app.py [--host HOST] [--port PORT] [--index DIR]`` (same as ``qa serve``)."""

from __future__ import annotations

import argparse
import logging


def main(argv: list[str] | None = None) -> None:
    """Parse --host, --port and --index, load the models and index once, and serve."""
    parser = argparse.ArgumentParser(description="Serve the article question-answering chat in the browser.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; "
                        "0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--index", help="index directory (default: the shipped index/)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="other libraries' messages and loading bars too (also QA_LOG_LEVEL=DEBUG)")
    args = parser.parse_args(argv)

    from qa import logs

    try:  # the project's own lines only (what it loaded, where it listens), unless -v or QA_LOG_LEVEL=DEBUG
        loud = logs.configure(args.verbose, default=logging.INFO)
    except ValueError as exc:
        raise SystemExit(f"app.py: error: {exc}") from None

    from qa.errors import USER_ERRORS
    from qa.web import launch

    try:
        demo = launch(index_dir=args.index, host=args.host, port=args.port, quiet=not loud, prevent_thread_lock=True)
        logging.getLogger("qa.web").info("the chat is at %s (Ctrl+C stops it)", demo.local_url)
        demo.block_thread()
    except USER_ERRORS as exc:
        raise SystemExit(f"app.py: error: {exc}") from None


if __name__ == "__main__":
    main()
