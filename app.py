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
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from qa.errors import USER_ERRORS
    from qa.web import launch

    try:
        launch(index_dir=args.index, host=args.host, port=args.port)
    except USER_ERRORS as exc:
        raise SystemExit(f"app.py: error: {exc}") from None


if __name__ == "__main__":
    main()
