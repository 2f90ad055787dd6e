"""articleqa: extractive question answering over news articles, with cited spans.

``from qa import Assistant`` is the Python API; ``qa`` is the command line.
"""

from __future__ import annotations

from qa._version import __version__

__all__ = ["Assistant", "Answer", "Citation", "Source", "Passage", "Settings", "__version__"]


def __getattr__(name: str):
    # Lazy, so that `import qa.config` or `qa --help` does not import torch.
    if name == "Assistant":
        from qa.assistant import Assistant

        return Assistant
    if name == "Settings":
        from qa.config import Settings

        return Settings
    if name in {"Answer", "Citation", "Source", "Passage"}:
        from qa import types

        return getattr(types, name)
    raise AttributeError(name)
