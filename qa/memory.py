"""Keep a long-running server's resident memory flat: cap the C allocator's arenas (glibc only).

glibc gives each thread that allocates its own malloc arena (up to 8 per core). A web server answers on many
threads in turn, and the reader's tensors change shape with every question, so each arena keeps freed blocks
of its own: resident memory creeps up although nothing leaks. Capping the arenas (what ``MALLOC_ARENA_MAX``
does, set here at run time) lets the threads reuse the same few. ``bench/memory.py`` measures both.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

M_ARENA_MAX = -8  # mallopt parameter number in glibc's malloc.h
DEFAULT_ARENAS = 2  # as qa.config.Settings.malloc_arenas


def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") else None
    except OSError:
        return None


def limit_arenas(arenas: int = DEFAULT_ARENAS) -> int | None:
    """Cap glibc's malloc arenas at ``arenas`` for the threads created from now on.

    Returns:
        The cap set, or None where the C library is not glibc (nothing changed).
    """
    libc = _libc()
    if libc is None or arenas < 1:
        return None
    if libc.mallopt(M_ARENA_MAX, int(arenas)) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused; memory may grow under many threads", arenas)
        return None
    log.debug("malloc arenas capped at %d", arenas)
    return int(arenas)

