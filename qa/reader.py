"""The extractive reader: question + passage windows through a QA model, logits decoded to spans.

transformers 5 has no question-answering pipeline, so decoding is done here: each passage is cut
into windows of ``max_length`` tokens with ``stride`` tokens of overlap; start/end logits are
masked to the passage's tokens; a span starts on a word's first token and ends on a word's last
(words as the tokenizer's own pre-tokenizer splits them, so "Shiite" is never cut to "Shi"); the best
(start, end) pairs up to ``max_answer_tokens`` long are kept; the [CLS] position gives the no-answer score; token offsets map spans back to characters.

A span's ``score`` is ``start_logit + end_logit``: the same scale in every window and passage, so
spans from different passages compare directly, and ``score - no_answer_score`` is the margin that
abstention thresholds.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class ReaderError(RuntimeError):
    """The reader model cannot be loaded or used."""


Screen = Callable[[list[tuple[str, list[str]]]], list[list[bool]]]
"""Given (question, remaining passages) pairs, which of those passages to read (:meth:`Reader.read_many`)."""


@dataclass(frozen=True)
class Span:
    """A candidate answer inside one passage.

    Attributes:
        text: the answer, exactly ``passages[passage_index][start:end]``.
        score: start logit + end logit (comparable across passages).
        passage_index: which of the passages given to ``extract``.
        start: character offset of the answer in that passage.
        end: character offset one past the answer's end.
        no_answer_score: the [CLS] score of the window the span was read in.
    """

    text: str
    score: float
    passage_index: int
    start: int
    end: int
    no_answer_score: float = float("-inf")


@dataclass(frozen=True)
class Reading:
    """All the reader says about one question: ranked spans and the no-answer score.

    ``no_answer_score`` is the lowest [CLS] score over all windows read: the window most sure that
    it holds an answer decides (a passage without the answer must not veto one with it).
    """

    spans: list[Span]
    no_answer_score: float
    question_chars: int | None = None
    """Set when the question was too long for a reader window: how many of its first characters were read."""
    passages_read: int | None = None
    """How many of the passages given were read: fewer than given when the reading stopped early
    (:meth:`Reader.read_many`'s ``exit_margin``) or passages were screened out (its ``screen``); None means all."""
    passage_margins: tuple[float | None, ...] | None = None
    """Per passage given: its best span's score minus its own lowest no-answer score, what reading that passage
    alone would give as :attr:`margin` (-inf where it has no valid span; None where it was not read)."""

    @property
    def margin(self) -> float:
        """Best span score minus no-answer score; negative means the model prefers no answer."""
        return (self.spans[0].score - self.no_answer_score) if self.spans else float("-inf")


@functools.lru_cache(maxsize=1)
def cpu_has_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.lru_cache(maxsize=1)
def bf16_pays() -> bool:
    """True when the CPU has native bf16 and a bf16 matrix product measurably beats a float32 one here.

    Some CPUs list AVX512-BF16 but multiply bf16 matrices slower than float32 (no AMX exposed: measured
    144 against 207 GFLOP/s on a 2-core Xeon), so the flag alone does not decide: a reader-sized product
    (512 x 768 by 768 x 768) is timed once per process in both types, about 30 ms, and bf16 must be at
    least 20% faster.
    """
    if not cpu_has_bf16():
        return False
    import time

    import torch

    def best(dtype) -> float:
        a = torch.randn(512, 768).to(dtype)
        b = torch.randn(768, 768).to(dtype)
        a @ b  # warm-up
        times = []
        for _ in range(5):
            t = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t)
        return min(times)

    fp32, bf16 = best(torch.float32), best(torch.bfloat16)
    log.debug("bf16 probe: float32 %.2f ms, bf16 %.2f ms", fp32 * 1e3, bf16 * 1e3)
    return bf16 < 0.8 * fp32


class Reader:
    """A transformers question-answering model with its tokenizer, loaded once and reused.

    Thread-safe: one forward pass runs at a time (torch already uses every core for one).
    """

    def __init__(self, model, tokenizer, *, name: str = "", max_length: int = 384, stride: int = 128,
                 max_answer_tokens: int = 30, n_best: int = 5, use_bf16: bool = True, batch_size: int = 16,
                 whole_words: bool = True) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise ReaderError(f"reader {name!r} needs a fast tokenizer (offset mappings); none was found")
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = min(max_length, getattr(tokenizer, "model_max_length", max_length) or max_length)
        self.stride = stride
        self.max_answer_tokens = max_answer_tokens
        self.n_best = n_best
        # "torch", or the ONNX Runtime engine's "onnx" / "onnx-int8" (qa.onnx_reader.OnnxQAModel)
        self.runtime: str = getattr(model, "runtime", "torch")
        self.use_bf16 = use_bf16 and self.runtime == "torch" and bf16_pays()
        self.batch_size = batch_size
        self.whole_words = whole_words
        # A window holds the whole question and part of the passage; the part must stay longer than the stride
        # (the tokenizer refuses otherwise), so a very long question is cut to leave the passage room.
        specials = tokenizer.num_special_tokens_to_add(pair=True) if hasattr(tokenizer, "num_special_tokens_to_add") \
            else 3
        self.max_question_tokens = max(1, min(self.max_length // 2, self.max_length - specials - self.stride - 64))
        self._lock = threading.Lock()
        self._linears_bf16 = False  # the torch model's Linear weights are loaded in float32

    @classmethod
    def load(cls, path: str | Path | None = None, *, runtime: str = "torch", **options) -> "Reader":
        """Load a transformers ``AutoModelForQuestionAnswering`` folder or id (safetensors only, no remote code).

        Args:
            path: a reader name (``minilm``, ``mpnet``), a model or LoRA adapter folder, or a model id available
                offline; None means the default named reader.
            runtime: ``torch``, ``onnx`` (ONNX Runtime, float32), ``onnx-int8`` (ONNX Runtime, dynamic int8
                weights) or ``auto`` (the fastest that keeps this reader's accuracy on this CPU:
                :func:`qa.runtime.choose_runtime`). The ONNX files are made by ``python -m qa.readers`` (else on
                first use); where ONNX Runtime is missing, ``auto`` is ``torch``.
            **options: ``max_length``, ``stride``, ``max_answer_tokens``, ``n_best``, ``use_bf16``, ``batch_size``,
                ``whole_words`` (spans start and end on word boundaries; default True), and ``tokenizer``
                (a folder to take the tokenizer from instead of ``path``).
        Raises:
            ReaderError: the model is missing or not a question-answering model; the message says what to do.
        """
        from qa.readers import reader_folder

        path = reader_folder(str(path or ""))
        local = Path(path)
        if (local.is_absolute() or path.startswith(".")) and not local.exists():
            raise ReaderError(
                f"reader model not found at {path}: train one with `qa train-reader`, "
                "or set QA_READER to a question-answering model folder"
            )
        from qa.base_models import BaseModelError
        from qa.readers import is_adapter, merged_reader

        name = path
        if is_adapter(path):
            try:
                path = str(merged_reader(path))
            except BaseModelError as exc:
                raise ReaderError(f"cannot load the reader {name!r}: {exc}") from None
        from qa.runtime import choose_runtime

        runtime = choose_runtime(runtime, name, options.get("use_bf16", True))
        try:
            from transformers import AutoTokenizer

            from qa.quiet import quiet_loading

            with quiet_loading():
                tokenizer = AutoTokenizer.from_pretrained(options.pop("tokenizer", None) or path,
                                                          trust_remote_code=False)
                if len(tokenizer) < 100:
                    raise ValueError(f"the tokenizer has only {len(tokenizer)} entries; tokenizer files are missing")
                model = _torch_model(path) if runtime == "torch" else _onnx_model(path, runtime)
        except (OSError, ValueError, EnvironmentError) as exc:
            raise ReaderError(
                f"could not load the reader {path!r} ({exc.__class__.__name__}: {str(exc).splitlines()[0]}); "
                "it must be a question-answering model folder with safetensors weights, or a model id "
                "available offline"
            ) from None
        log.info("reader loaded from %s on %s", name if name == path else f"{name} (merged: {path})", runtime)
        return cls(model, tokenizer, name=name, **options)

    def extract(self, question: str, passages: list[str], top_k: int = 1) -> list[Span]:
        """The ``top_k`` best answer spans for ``question`` over ``passages``, best first."""
        return self.read(question, passages, top_k).spans

    def read(self, question: str, passages: list[str], top_k: int | None = None) -> Reading:
        """Read the passages and return ranked spans with the no-answer score.

        Args:
            question: the question (already stripped of surrounding space).
            passages: texts to read; offsets in the spans refer to these.
            top_k: spans to return (default ``n_best``); spans with the same passage offsets are merged.
        Returns:
            A :class:`Reading`; its ``spans`` may be empty when no passage has a valid span.
        """
        return self.read_many([(question, passages)], top_k)[0]

    def read_many(self, items: list[tuple[str, list[str]]], top_k: int | None = None,
                  exit_margin: float | None = None, screen: Screen | None = None) -> list[Reading]:
        """Read several questions, each over its own passages (best first), in shared batches.

        Args:
            items: (question, passages) pairs.
            top_k: spans to keep per question (default ``n_best``).
            exit_margin: early exit. When set, every question's first passage is read alone first, and a
                question whose best span there beats the no-answer score by at least this many logits is
                answered from it; only the others read their remaining passages (in a second batch). For those
                the reading is the same as without it; an abstention always reads every passage. None (or
                ``inf``) reads every passage of every question at once.
            screen: with ``exit_margin``, which of the remaining passages of the questions that read on are read:
                called once with those questions and their remaining passages (``(question, passages)`` pairs),
                it returns one list of booleans per pair (:meth:`Assistant._screen`: a smaller reader's margins).
                None reads them all.
        Returns:
            One :class:`Reading` per item, in order.
        """
        if exit_margin is None or exit_margin == math.inf or all(len(ps) < 2 for _, ps in items):
            return self._read_all(items, top_k)
        first = self._read_all([(q, ps[:1]) for q, ps in items], top_k)
        rest = [i for i, (q, ps) in enumerate(items) if len(ps) > 1 and first[i].margin < exit_margin]
        kept = [list(range(1, len(items[i][1]))) for i in rest]
        if screen is not None and rest:
            verdicts = screen([(items[i][0], items[i][1][1:]) for i in rest])
            if len(verdicts) != len(rest) or any(len(v) != len(k) for v, k in zip(verdicts, kept)):
                raise ValueError("screen must return one verdict per remaining passage")
            kept = [[p for p, keep in zip(ps, v) if keep] for ps, v in zip(kept, verdicts)]
        reading = [(i, ps) for i, ps in zip(rest, kept) if ps]
        more = self._read_all([(items[i][0], [items[i][1][p] for p in ps]) for i, ps in reading], top_k)
        for (i, ps), extra in zip(reading, more):
            first[i] = merge_readings(first[i], extra, top_k or self.n_best, ps)
        read_on = dict(reading)
        out = []
        for i, (r, (_, ps)) in enumerate(zip(first, items)):
            count = 1 + len(read_on.get(i, ())) if len(ps) > 1 else None
            margins = tuple(r.passage_margins or ()) + (None,) * (len(ps) - len(r.passage_margins or ()))
            out.append(dataclasses.replace(r, passages_read=None if count in (None, len(ps)) else count,
                                           passage_margins=margins))
        return out

    def passage_margins(self, items: list[tuple[str, list[str]]]) -> list[tuple[float, ...]]:
        """Each passage's margin read alone (:attr:`Reading.passage_margins`), for several questions in one batch."""
        return [r.passage_margins or () for r in self._read_all(items)]

    def _read_all(self, items: list[tuple[str, list[str]]], top_k: int | None = None) -> list[Reading]:
        """Read several questions, each over all of its passages, in shared batches."""
        top_k = top_k or self.n_best
        fitted = [self.fit_question(q) for q, _ in items]
        cut = [len(f) if f != q else None for f, (q, _) in zip(fitted, items)]
        items = [(f, ps) for f, (_, ps) in zip(fitted, items)]
        pairs = [(qi, pi, q, p) for qi, (q, ps) in enumerate(items) for pi, p in enumerate(ps)]
        results: list[dict[tuple[int, int], Span]] = [{} for _ in items]
        nulls = [float("inf")] * len(items)
        best = {(qi, pi): -math.inf for qi, pi, _, _ in pairs}  # per passage: best span score, lowest null
        passage_nulls = {(qi, pi): math.inf for qi, pi, _, _ in pairs}
        if not pairs:
            return [Reading([], n, c, passage_margins=()) for n, c in zip(nulls, cut)]
        enc = self.encode([q for _, _, q, _ in pairs], [p for _, _, _, p in pairs])
        start_logits, end_logits = self.forward_windows(enc)
        for w, pair_i in enumerate(enc["overflow_to_sample_mapping"]):
            qi, pi, _, passage = pairs[pair_i]
            seq = enc.sequence_ids(w)
            ctx = np.asarray([s == 1 for s in seq])
            starts_ok = ends_ok = ctx
            if self.whole_words:
                starts_ok, ends_ok = word_edges(enc.word_ids(w), ctx)
            s_log, e_log = start_logits[w][: len(seq)], end_logits[w][: len(seq)]
            null = float(s_log[0] + e_log[0])
            nulls[qi] = min(nulls[qi], null)
            passage_nulls[qi, pi] = min(passage_nulls[qi, pi], null)
            offsets = enc["offset_mapping"][w]
            for s, e, score in best_pairs(s_log, e_log, starts_ok, self.max_answer_tokens, top_k, ends_ok):
                best[qi, pi] = max(best[qi, pi], score)
                start, end = offsets[s][0], offsets[e][1]
                key = (pi, start, end)
                old = results[qi].get(key)
                if old is None or score > old.score:
                    results[qi][key] = Span(passage[start:end], score, pi, start, end, null)
        out = []
        for qi in range(len(items)):
            spans = sorted(results[qi].values(), key=lambda s: -s.score)[:top_k]
            margins = tuple(best[qi, pi] - passage_nulls[qi, pi] for pi in range(len(items[qi][1])))
            out.append(Reading(spans, nulls[qi], cut[qi], passage_margins=margins))
        return out

    def fit_question(self, question: str) -> str:
        """``question``, cut after ``max_question_tokens`` tokens (unchanged when it is shorter)."""
        if len(question) <= self.max_question_tokens // 4:  # at most 4 tokens per character (UTF-8 bytes)
            return question
        enc = self.tokenizer(question, add_special_tokens=False, return_offsets_mapping=True)
        if len(enc["input_ids"]) <= self.max_question_tokens:
            return question
        end = enc["offset_mapping"][self.max_question_tokens - 1][1]
        log.info("question of %d tokens cut to %d for the reader", len(enc["input_ids"]), self.max_question_tokens)
        return question[:end].rstrip()

    def encode(self, questions: list[str], passages: list[str]):
        """Question/passage pairs as the reader's windows (``max_length`` tokens, ``stride`` overlap).

        Returns:
            The tokenizer's encoding with ``overflow_to_sample_mapping`` and ``offset_mapping``, unpadded.
        """
        return self.tokenizer(questions, passages, truncation="only_second", max_length=self.max_length,
                              stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                              padding=False)

    def forward_windows(self, enc) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Run every window of a tokenizer encoding through the model in length-sorted batches.

        Each batch is padded to its own longest window only.

        Args:
            enc: the tokenizer's output for question/passage pairs (``input_ids``, optionally ``token_type_ids``).
        Returns:
            Float32 start logits and end logits, one array per window, in the encoding's order.
        """
        n = len(enc["input_ids"])
        order = sorted(range(n), key=lambda i: len(enc["input_ids"][i]))
        starts: list[np.ndarray] = [np.empty(0)] * n
        ends: list[np.ndarray] = [np.empty(0)] * n
        pad = self.tokenizer.pad_token_id or 0
        with self._lock:
            for b in range(0, n, self.batch_size):
                idx = order[b : b + self.batch_size]
                width = max(len(enc["input_ids"][i]) for i in idx)
                ids = np.full((len(idx), width), pad, dtype=np.int64)
                mask = np.zeros((len(idx), width), dtype=np.int64)
                tt = np.zeros((len(idx), width), dtype=np.int64)
                for row, i in enumerate(idx):
                    k = len(enc["input_ids"][i])
                    ids[row, :k] = enc["input_ids"][i]
                    mask[row, :k] = 1
                    if "token_type_ids" in enc:
                        tt[row, :k] = enc["token_type_ids"][i]
                inputs = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in enc:
                    inputs["token_type_ids"] = tt
                s, e = self.logits(inputs)
                for row, i in enumerate(idx):
                    starts[i], ends[i] = s[row], e[row]
        return starts, ends

    def logits(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Float32 start and end logits (batch, tokens) of one padded batch, on the reader's runtime.

        Args:
            inputs: int64 arrays ``input_ids``, ``attention_mask`` and, for models that use it, ``token_type_ids``.
        """
        if self.runtime != "torch":
            return self.model.logits(inputs)
        import torch

        if self._linears_bf16 != self.use_bf16:
            self._hold_linears(torch.bfloat16 if self.use_bf16 else torch.float32)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.use_bf16):
            output = self.model(**{k: torch.from_numpy(v) for k, v in inputs.items()})
            return output.start_logits.float().numpy(), output.end_logits.float().numpy()

    def _hold_linears(self, dtype) -> None:
        """Keep the model's Linear layers in ``dtype``: bf16 while autocast is on, float32 otherwise.

        Autocast multiplies every Linear in bf16 and, with float32 weights, casts each weight again on every call;
        held in bf16 they are cast once, and the products are the same. Layer norms, embeddings and softmax stay
        as autocast runs them. The cost is memory: the bf16 weights are the process's own (about 155 MiB for
        `mpnet`, 15 for `minilm`), while the float32 ones stay mapped from the weights file (shared and reclaimable,
        as before). A reader switched back to float32 keeps the bf16-rounded values.
        """
        import torch

        for module in self.model.modules():
            if isinstance(module, torch.nn.Linear):
                module.to(dtype)
        self._linears_bf16 = dtype == torch.bfloat16


def _torch_model(path: str):
    """A transformers question-answering model in float32, for inference (weights may be stored at half precision;
    compute runs in float32, with bf16 autocast where native)."""
    import torch
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(path, use_safetensors=True, trust_remote_code=False,
                                                          dtype=torch.float32)
    return model.eval()


def _onnx_model(path: str, runtime: str):
    """The reader at ``path`` on ONNX Runtime (exported first where set-up has not done it).

    Raises:
        ReaderError: the export or ONNX Runtime failed.
    """
    from qa.onnx_reader import OnnxError, OnnxQAModel, onnx_file

    if not Path(path).is_dir():
        raise ReaderError(f"the reader {path!r} is not a local folder: only folders are exported to ONNX; "
                          "set QA_RUNTIME=torch")
    try:
        return OnnxQAModel(onnx_file(path, runtime), runtime)
    except OnnxError as exc:
        raise ReaderError(f"{exc}; QA_RUNTIME=torch runs the reader without ONNX Runtime") from None


def merge_readings(first: Reading, more: Reading, top_k: int, positions: list[int] | None = None) -> Reading:
    """One question's reading of its first passage and of others made one: the same spans and no-answer score as
    reading all of them together. Pure function.

    Args:
        first: the reading of the first passage alone.
        more: the reading of other passages.
        top_k: spans to keep.
        positions: where ``more``'s passages stand among the question's passages (default 1, 2, ...: all the rest).
    """
    def at(index: int) -> int:
        return positions[index] if positions is not None else index + 1

    shifted = [dataclasses.replace(span, passage_index=at(span.passage_index)) for span in more.spans]
    spans = sorted(first.spans + shifted, key=lambda s: -s.score)[:top_k]
    margins = None
    if first.passage_margins is not None and more.passage_margins is not None:
        known = dict(enumerate(first.passage_margins[:1])) | {at(i): m for i, m in enumerate(more.passage_margins)}
        margins = tuple(known.get(p) for p in range(max(known, default=-1) + 1))
    return Reading(spans, min(first.no_answer_score, more.no_answer_score), first.question_chars,
                   passage_margins=margins)


def word_edges(word_ids: list[int | None], context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Context tokens that may start a span (a word's first token) and end one (a word's last token).

    Args:
        word_ids: the tokenizer's word index of each token of one window (None for special tokens).
        context: True for the passage's tokens.
    Returns:
        Two boolean masks; a word cut by the window's edge may still end or start there.
    """
    ids = np.asarray([-1 if w is None else w for w in word_ids])
    prev = np.concatenate(([-2], ids[:-1]))
    nxt = np.concatenate((ids[1:], [-2]))
    inner = ids >= 0
    return context & (~inner | (ids != prev)), context & (~inner | (ids != nxt))


def best_pairs(start_logits: np.ndarray, end_logits: np.ndarray, context: np.ndarray,
               max_answer_tokens: int, n: int, end_context: np.ndarray | None = None) -> list[tuple[int, int, float]]:
    """The ``n`` best (start, end, score) token pairs with the start in ``context``, the end in
    ``end_context`` (default: ``context``), end >= start, and at most ``max_answer_tokens`` tokens long.
    Pure function over one window's logits."""
    starts = np.flatnonzero(context)
    ends = starts if end_context is None else np.flatnonzero(end_context)
    if starts.size == 0 or ends.size == 0:
        return []
    s = start_logits[starts].astype(np.float64)
    e = end_logits[ends].astype(np.float64)
    scores = s[:, None] + e[None, :]
    span = ends[None, :] - starts[:, None]
    valid = (span >= 0) & (span < max_answer_tokens)
    scores = np.where(valid, scores, -np.inf)
    flat = scores.ravel()
    k = min(n, int(valid.sum()))
    if k == 0:
        return []
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top])]
    m = ends.size
    return [(int(starts[t // m]), int(ends[t % m]), float(flat[t])) for t in top]
