"""Which runtime runs a reader: torch, or ONNX Runtime in float32 or int8, chosen per reader and CPU.

``QA_RUNTIME`` (the ``runtime`` setting) names one, or ``auto`` (the default) picks, from measurements
(``bench/readers.py``, docs/performance.md), the fastest runtime that keeps a shipped reader's accuracy on the CPU
at hand:

* ``onnx-int8`` for a reader in :data:`INT8_READERS` on a CPU with VNNI: those whose int8 model's F1 dropped by
  at most 0.5 on each of SQuAD v1.1 (1,000-question sample), XQuAD-en and SQuAD 2.0's calibration articles, measured
  on such a CPU (without VNNI, int8 weights have 7 bits and were not measured);
* else ``torch`` where bf16 autocast pays (:func:`qa.reader.bf16_pays`: native bf16 that multiplies faster
  than float32), which beat ONNX Runtime in float32 there;
* else ``onnx`` (float32: the same logits as torch to 1e-5, and faster than torch in float32).

Any other reader (a folder or id of your own) runs on ``torch`` under ``auto``: nothing is exported unasked.
Where ONNX Runtime is not installed, ``auto`` is ``torch``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from qa.config import RUNTIMES

log = logging.getLogger(__name__)

# Shipped readers whose int8 model keeps F1 within 0.5 on every gate set (bench/results/runtimes/).
INT8_READERS: frozenset[str] = frozenset()


def choose_runtime(setting: str, reader: str | Path, use_bf16: bool = True) -> str:
    """The runtime a reader runs on: ``setting`` itself, or for ``auto`` the rule in this module's docstring.

    Args:
        setting: ``auto``, ``torch``, ``onnx`` or ``onnx-int8`` (empty means ``auto``).
        reader: the reader's name or folder (as the ``reader`` setting gives it).
        use_bf16: whether bf16 autocast is allowed (the ``use_bf16`` setting).
    Raises:
        ValueError: an unknown runtime.
    """
    setting = setting or "auto"
    if setting not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {setting!r}")
    if setting != "auto":
        return setting
    from qa.onnx_reader import onnxruntime_available
    from qa.readers import NAMED_READERS, reader_name

    name = reader_name(str(reader))
    if name not in NAMED_READERS or not onnxruntime_available():
        return "torch"
    from qa.onnx_reader import cpu_has_vnni

    if name in INT8_READERS and cpu_has_vnni():
        return "onnx-int8"
    from qa.reader import bf16_pays

    return "torch" if use_bf16 and bf16_pays() else "onnx"
