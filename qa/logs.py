"""Logging for the programs (``qa`` and ``app.py``): the project's own lines, other libraries' only on request.

The library only creates loggers (``logging.getLogger(__name__)``); it never configures logging, so a program
that imports it keeps its own set-up. The entry points call :func:`configure`, which gives

* the project's loggers (``qa.*``) at ``QA_LOG_LEVEL`` (default: WARNING for ``qa``, INFO for the web app,
  whose start-up lines say what it loaded and where it listens);
* every other library at WARNING, and transformers at ERROR without its progress bars, so that no
  "Loading weights" bars, no "LOAD REPORT" tables and no faiss loader lines ("Could not load library with
  AVX512 support") are shown;
* with ``-v`` (``--verbose``) or ``QA_LOG_LEVEL=DEBUG``, everything at that level: other libraries' messages,
  transformers' bars and load reports come back.

The progress bars of long work (index builds, training, evaluation) are the project's own and stay.
"""

from __future__ import annotations

import logging
import os

ENV = "QA_LOG_LEVEL"
FORMAT = "%(levelname)s %(name)s: %(message)s"


def level_from_env(default: int) -> int:
    """``QA_LOG_LEVEL`` (a name such as ``DEBUG`` or ``info``, or a number) as a logging level, else ``default``."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return default
    if value.isdigit():
        return int(value)
    level = logging.getLevelName(value.upper())
    if not isinstance(level, int):
        raise ValueError(f"{ENV}={value!r} is not a logging level: use DEBUG, INFO, WARNING or ERROR")
    return level


def configure(verbose: bool = False, default: int = logging.WARNING, fmt: str = FORMAT) -> bool:
    """Set up logging for a program run from the command line; return True when other libraries are heard.

    Args:
        verbose: ``-v``: INFO at least, and other libraries' messages and bars as they make them.
        default: the project's level when neither ``-v`` nor ``QA_LOG_LEVEL`` says otherwise.
        fmt: the line format.
    """
    level = level_from_env(logging.INFO if verbose else default)
    if verbose:
        level = min(level, logging.INFO)
    loud = verbose or level <= logging.DEBUG
    root_level = level if loud else max(level, logging.WARNING)
    logging.basicConfig(level=root_level, format=fmt)  # a no-op where the program has set up logging already
    if level < root_level:
        logging.getLogger("qa").setLevel(level)
    if not loud:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # for a transformers imported later
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # load reports are warnings
        hf_logging.disable_progress_bar()  # "Loading weights" (and the hub's download bars)
    return loud
