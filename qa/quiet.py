"""Model loads that print nothing: transformers' "Loading weights" bars kept off stderr while the library loads.

The library never configures logging (see :mod:`qa.logs`), but a library that writes progress bars to a
program's stderr each time it loads a model is not quiet either. :func:`quiet_loading` turns transformers'
progress bars off for the duration of one load and puts them back as they were, so the program's own
setting is unchanged afterwards. The bars stay on where the program asked to hear this project at INFO or
below and left transformers' bars on (``qa -v`` does, through :func:`qa.logs.configure`).
"""

from __future__ import annotations

import logging
import threading
import warnings
from contextlib import contextmanager
from typing import Iterator

_LOCK = threading.RLock()
_DEPTH = 0
_SAVED: bool | None = None


def bars_wanted() -> bool:
    """True when the program listens to this project at INFO or below: then other libraries' bars stay on."""
    return logging.getLogger("qa").isEnabledFor(logging.INFO)


@contextmanager
def quiet_loading() -> Iterator[None]:
    """Within the block, transformers shows no progress bars (unless :func:`bars_wanted`); restored after.

    Nested and concurrent blocks share one switch: the bars come back when the last block ends.
    """
    global _DEPTH, _SAVED
    if bars_wanted():
        yield
        return
    from transformers.utils import logging as hf_logging

    with _LOCK:
        if _DEPTH == 0:
            _SAVED = hf_logging.is_progress_bar_enabled()
            if _SAVED:
                with warnings.catch_warnings():  # huggingface_hub warns where an environment variable overrides it
                    warnings.simplefilter("ignore")
                    hf_logging.disable_progress_bar()
        _DEPTH += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH -= 1
            if _DEPTH == 0 and _SAVED:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    hf_logging.enable_progress_bar()
