"""SQuAD-format data to reader training windows.

Standard extractive-QA preprocessing: question + context windows of ``max_length`` tokens with
``stride`` tokens of overlap, start/end labels found through the tokenizer's ``offset_mapping``;
a window that does not hold the whole answer is labelled no-answer (position 0, the [CLS] token).
No-answer training also gets *negatives*: a question paired with another paragraph of the same
article that does not contain the answer text (the closest one by word overlap, so the negatives
look like what retrieval hands the reader), and, harder, the question's own paragraph with the
sentence that holds the answer deleted (on topic, same wording, no answer: the kind of passage a
reader must learn to refuse).
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_WORD = re.compile(r"\w+")
# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) before white space.
_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\u201d\u2019]?\s+")


@dataclass(frozen=True)
class Example:
    """One question over one context; ``answer_start`` is -1 for a no-answer example."""

    qid: str
    question: str
    context: str
    answer_text: str
    answer_start: int
    article: int = 0


def load_squad(path: str | Path, limit: int | None = None) -> list[Example]:
    """Read a SQuAD v1.1/v2.0 JSON file into examples (first gold answer; [] answers become no-answer).

    Args:
        path: the JSON file.
        limit: keep only the first ``limit`` questions.
    Returns:
        The examples in file order.
    """
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)["data"]
    out: list[Example] = []
    for a_i, article in enumerate(data):
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = qa.get("answers") or []
                if answers and not qa.get("is_impossible", False):
                    ans = answers[0]
                    out.append(Example(qa["id"], qa["question"], para["context"], ans["text"], ans["answer_start"], a_i))
                else:
                    out.append(Example(qa["id"], qa["question"], para["context"], "", -1, a_i))
                if limit is not None and len(out) >= limit:
                    return out
    return out


def make_negatives(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """Pair a ``fraction`` of the questions with another paragraph of the same article as no-answer examples.

    The paragraph chosen is the one sharing most words with the question among those that do not
    contain the answer text, so that negatives resemble retrieved-but-wrong passages.
    """
    rng = random.Random(seed)
    by_article: dict[int, list[str]] = {}
    for ex in examples:
        paras = by_article.setdefault(ex.article, [])
        if not paras or paras[-1] != ex.context:
            if ex.context not in paras:
                paras.append(ex.context)
    words = {ctx: set(_WORD.findall(ctx.lower())) for paras in by_article.values() for ctx in paras}
    out: list[Example] = []
    for ex in examples:
        if ex.answer_start < 0 or rng.random() >= fraction:
            continue
        q_words = set(_WORD.findall(ex.question.lower()))
        candidates = [
            ctx for ctx in by_article[ex.article] if ctx != ex.context and ex.answer_text.lower() not in ctx.lower()
        ]
        if not candidates:
            continue
        best = max(candidates, key=lambda ctx: (len(q_words & words[ctx]), rng.random()))
        out.append(Example(ex.qid + "-neg", ex.question, best, "", -1, ex.article))
    return out


def plain_sentence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of ``text`` (a plain end-of-sentence punctuation split).

    Plainer than :func:`qa.chunking.sentence_spans` (no abbreviation list: "U.S. Army" splits after
    "U.S."), which only makes some answer-deleted negatives drop a sentence fragment; it stays as it is
    because the shipped stage-8 reader was trained on the negatives it makes.

    Returns:
        ``(start, end)`` pairs that cover the text in order; white space between sentences is left out.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((start, m.start() + len(m.group().rstrip())))
        start = m.end()
    if start < len(text.rstrip()):
        spans.append((start, len(text.rstrip())))
    return spans


def make_removal_negatives(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """Turn a ``fraction`` of the answerable questions into no-answer examples by deleting their answer.

    The sentences that overlap the gold answer are cut out of the question's own paragraph; the
    example is skipped when the answer text still occurs in what is left or when fewer than two
    sentences would remain (too little context to be a passage).

    Args:
        examples: the training examples (no-answer ones are left alone).
        fraction: share of the answerable ones to turn into negatives.
        seed: for the sampling.
    Returns:
        The new no-answer examples, ``qid`` suffixed ``-del``.
    """
    rng = random.Random(f"removal-{seed}")
    out: list[Example] = []
    for ex in examples:
        if ex.answer_start < 0 or rng.random() >= fraction:
            continue
        a_start, a_end = ex.answer_start, ex.answer_start + len(ex.answer_text)
        kept = [(s, e) for s, e in plain_sentence_spans(ex.context) if e <= a_start or s >= a_end]
        if len(kept) < 2:
            continue
        context = " ".join(ex.context[s:e] for s, e in kept)
        if ex.answer_text.lower() in context.lower():
            continue
        out.append(Example(ex.qid + "-del", ex.question, context, "", -1, ex.article))
    return out


# Mentions a look-alike question swaps: a year, another number, or a run of capitalised words (a name).
_YEAR = re.compile(r"\b1\d{3}\b|\b20\d\d\b")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_NAME = re.compile(r"\b[A-Z][\w\-]*(?:\s+(?:of\s+|the\s+|de\s+|van\s+|von\s+)?[A-Z][\w\-]*)*")
_SENTENCE_START = re.compile(r"(?:^|[.!?:;\"\u201c(]\s*)$")


def mentions(text: str) -> list[tuple[str, int, int]]:
    """The years, other numbers and names (runs of capitalised words) of ``text``: ``(kind, start, end)``.

    A name that starts the text or a sentence of it is left out (a first word is capitalised whatever it is).
    """
    found: list[tuple[str, int, int]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in (("year", _YEAR), ("number", _NUMBER), ("name", _NAME)):
        for m in pattern.finditer(text):
            start, end = m.span()
            if any(start < e and s < end for s, e in taken) or \
                    (kind == "name" and _SENTENCE_START.search(text[max(0, start - 3):start])):
                continue
            found.append((kind, start, end))
            taken.append((start, end))
    return sorted(found, key=lambda x: x[1])


def make_swap_negatives(examples: list[Example], fraction: float, seed: int) -> list[Example]:
    """Turn a ``fraction`` of the answerable questions into look-alike unanswerable ones by swapping a mention.

    A year, number or name of the question is replaced by another of the same kind taken from another
    paragraph of the same article, one that the question's own paragraph never mentions; the question is then
    asked of its own paragraph, which now does not answer it ("When did Beyonce leave Destiny's Child?" asked
    as "When did Kelly Rowland leave Destiny's Child?" where only Beyonce's leaving is told). Questions without
    a mention, or without a replacement, are skipped.

    Args:
        examples: the training examples (no-answer ones are left alone).
        fraction: share of the answerable ones to turn into negatives.
        seed: for the sampling and the choice of mention and replacement.
    Returns:
        The new no-answer examples, ``qid`` suffixed ``-swap``.
    """
    rng = random.Random(f"swap-{seed}")
    pool: dict[tuple[int, str], set[str]] = {}
    for ctx, article in {(ex.context, ex.article) for ex in examples}:
        for kind, start, end in mentions(ctx):
            pool.setdefault((article, kind), set()).add(ctx[start:end])
    pools = {key: sorted(values) for key, values in pool.items()}
    out: list[Example] = []
    for ex in examples:
        if ex.answer_start < 0 or rng.random() >= fraction:
            continue
        found = mentions(ex.question)
        rng.shuffle(found)
        context = ex.context.lower()
        for kind, start, end in found:
            original = ex.question[start:end]
            if original.lower() not in context:
                continue  # a mention the paragraph does not state: swapping it proves nothing
            options = [v for v in pools.get((ex.article, kind), []) if v.lower() not in context
                       and v.lower() not in ex.question.lower()]
            if options:
                question = ex.question[:start] + rng.choice(options) + ex.question[end:]
                out.append(Example(ex.qid + "-swap", question, ex.context, "", -1, ex.article))
                break
    return out


@dataclass
class Features:
    """Tokenised training windows, ragged: ``input_ids[i]`` has its own length.

    With ``featurize(..., with_offsets=True)`` also, per window, the index of its example
    (``example_index``) and each token's character span in the context (``char_offsets``, shape
    ``(tokens, 2)``; ``-1, -1`` for the question and special tokens): what distillation needs to put a
    teacher's character-level scores onto the student's tokens.
    """

    input_ids: list[np.ndarray]
    token_type_ids: list[np.ndarray]
    start_positions: np.ndarray
    end_positions: np.ndarray
    example_index: np.ndarray | None = None
    char_offsets: list[np.ndarray] | None = None
    teacher: object | None = None  # qa.training.teacher.TeacherTargets when distilling

    def __len__(self) -> int:
        return len(self.input_ids)


def featurize(
    examples: list[Example],
    tokenizer,
    max_length: int = 256,
    stride: int = 96,
    keep_cut_fraction: float = 0.3,
    seed: int = 0,
    batch_size: int = 1000,
    with_offsets: bool = False,
) -> Features:
    """Tokenise examples into labelled windows.

    Args:
        examples: questions with contexts and answers (``answer_start`` -1 for no answer).
        tokenizer: a fast tokenizer (needs ``offset_mapping``).
        max_length: tokens per window, question included.
        stride: tokens shared by neighbouring windows of one context.
        keep_cut_fraction: share of answerable-question windows that miss the answer to keep (as no-answer).
        seed: for the sampling of such windows.
        with_offsets: also record each window's example index and its tokens' character spans.
    Returns:
        The windows with start/end labels (0 and 0 for no answer).
    """
    rng = random.Random(seed)
    example_out: list[int] = []
    offsets_out: list[np.ndarray] = []
    ids_out: list[np.ndarray] = []
    tt_out: list[np.ndarray] = []
    starts: list[int] = []
    ends: list[int] = []
    for b in range(0, len(examples), batch_size):
        chunk = examples[b : b + batch_size]
        enc = tokenizer(
            [e.question.strip() for e in chunk],
            [e.context for e in chunk],
            truncation="only_second",
            max_length=max_length,
            stride=stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        for w, ex_i in enumerate(enc["overflow_to_sample_mapping"]):
            ex = chunk[ex_i]
            seq_ids = enc.sequence_ids(w)
            offsets = enc["offset_mapping"][w]
            start_pos = end_pos = 0
            if ex.answer_start >= 0:
                a_start = ex.answer_start
                a_end = a_start + len(ex.answer_text)
                ctx = [i for i, s in enumerate(seq_ids) if s == 1]
                if ctx and offsets[ctx[0]][0] <= a_start and offsets[ctx[-1]][1] >= a_end:
                    start_pos = next(i for i in ctx if offsets[i][1] > a_start)
                    end_pos = next(i for i in reversed(ctx) if offsets[i][0] < a_end)
                elif rng.random() >= keep_cut_fraction:
                    continue
            ids_out.append(np.asarray(enc["input_ids"][w], dtype=np.int32))
            tt = enc["token_type_ids"][w] if "token_type_ids" in enc else [0] * len(enc["input_ids"][w])
            tt_out.append(np.asarray(tt, dtype=np.int8))
            starts.append(start_pos)
            ends.append(end_pos)
            if with_offsets:
                example_out.append(b + ex_i)
                spans = np.asarray(offsets, dtype=np.int32).reshape(-1, 2)
                spans[np.asarray([sid != 1 for sid in seq_ids])] = -1
                offsets_out.append(spans)
    feats = Features(ids_out, tt_out, np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64))
    if with_offsets:
        feats.example_index = np.asarray(example_out, dtype=np.int64)
        feats.char_offsets = offsets_out
    return feats


def squad2_examples(part: str) -> list[Example]:
    """The SQuAD 2.0 dev questions of one part of :mod:`qa.training.splits` as examples (unanswerable: no answer).

    Their article numbers are offset by 100,000 so that paired negatives never mix them with SQuAD v1.1's.
    """
    from qa.training.splits import load_part

    return [Example(q.qid, q.question, q.context, q.golds[0] if q.golds else "", q.answer_start, 100_000 + q.article)
            for q in load_part(part)]


def training_examples(train_file: str | Path, limit: int | None, offset: int, seed: int, negative_fraction: float,
                      removal_fraction: float, squad2_part: str = "", swap_fraction: float = 0.0) -> list[Example]:
    """The examples a training run learns from: its questions, then their paired and answer-deleted negatives,
    then (with ``squad2_part``) SQuAD 2.0's questions of that part, answerable and unanswerable as written.

    Args:
        train_file: a SQuAD v1.1 JSON file.
        limit: a seeded sample of this many questions (None: all), starting at ``offset`` of the seeded order,
            so that a later run with a further ``offset`` (and the same ``seed``) gets questions this one did not.
        offset: where the sample starts in the seeded order.
        seed: for the sample and the negatives.
        negative_fraction: share of the questions paired with another paragraph of their article.
        removal_fraction: share of the questions whose answer sentence is deleted.
        swap_fraction: share of the questions made look-alike unanswerable ones (:func:`make_swap_negatives`).
        squad2_part: ``train`` adds the SQuAD 2.0 dev questions of :mod:`qa.training.splits`' training articles
            ("": none; ``train_file`` may then be "" for SQuAD 2.0 alone).
    Returns:
        Questions in file order, then the negatives, then the SQuAD 2.0 questions.
    """
    if squad2_part and squad2_part != "train":
        raise ValueError(f"only the 'train' part of SQuAD 2.0 may be trained on, not {squad2_part!r}")
    examples = load_squad(train_file) if train_file else []
    if limit is not None:
        order = list(range(len(examples)))
        random.Random(seed).shuffle(order)
        examples = [examples[i] for i in sorted(order[offset : offset + limit])]
    negatives = make_negatives(examples, negative_fraction, seed)
    removals = make_removal_negatives(examples, removal_fraction, seed)
    swaps = make_swap_negatives(examples, swap_fraction, seed) if swap_fraction else []
    squad2 = squad2_examples(squad2_part) if squad2_part else []
    log.info("%d questions, %d paired negatives, %d answer-deleted negatives, %d look-alike negatives, %d SQuAD 2.0 "
             "questions (%d unanswerable)", len(examples), len(negatives), len(removals), len(swaps), len(squad2),
             sum(ex.answer_start < 0 for ex in squad2))
    return examples + negatives + removals + swaps + squad2


# The run settings that decide which examples a run has (TrainConfig and TeacherConfig both carry them).
SELECTION = ("train_file", "limit", "offset", "seed", "negative_fraction", "removal_fraction", "squad2_part",
             "swap_fraction")


def selected_examples(cfg) -> list[Example]:
    """:func:`training_examples` for a run config with the :data:`SELECTION` fields (a config without
    ``squad2_part``, as older runs saved it, has none)."""
    return training_examples(**{k: getattr(cfg, k, 0.0 if k == "swap_fraction" else "") for k in SELECTION})


def bucketed_batches(lengths: list[int], batch_size: int, seed: int, epoch: int = 0) -> list[list[int]]:
    """Batches of similar length (little padding), in a shuffled order that depends only on seed and epoch.

    Indices are shuffled, cut into pools of 50 batches, sorted by length inside each pool, cut
    into batches, and the batches shuffled again.
    """
    rng = random.Random(seed * 1000 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches: list[list[int]] = []
    for p in range(0, len(order), pool):
        part = sorted(order[p : p + pool], key=lambda i: lengths[i])
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    rng.shuffle(batches)
    return batches
