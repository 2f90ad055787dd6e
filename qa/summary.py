"""A document's key sentences, chosen with sentence embeddings: the extractive answer to a whole-document question.

Each sentence of the body is scored by how central it is (cosine similarity to the mean of all the sentences'
vectors), how close it is to the title (when the title stands in the text) and where it stands (news and opinion
put their point first). Sentences are then picked greedily by maximal marginal relevance: score, less the
similarity to what was already picked, so that a summary does not say one thing three times. The chosen sentences
come back in document order.

A main argument weighs the lead less (a thesis is what the whole text keeps saying, wherever it stands); a
conclusion is chosen from the last third of the body with the prior turned to the end. Both add a small bonus
for the cue phrases that announce them ("In other words", "The reason is" ...; "Finally", "In conclusion" ...),
the oldest signal of extractive summarisation (Edmundson, 1969).

The dateline, title, byline, the author's bio and the closing "first appeared on" line are never key sentences
(:func:`qa.metadata.document_fields` finds them), nor are headings, questions or fragments. The summary weights
were measured on 500 articles of a public CNN/DailyMail validation subset against their highlights, with LEAD-3
and TextRank beside them (``bench/summaries.py``, ``docs/evaluation.md``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from qa.answer import cite
from qa.chunking import front_matter_end, sentence_spans
from qa.metadata import document_fields, paragraphs
from qa.types import Answer, Source

MIN_WORDS = 6  # shorter "sentences" are headings, captions or fragments
HEADING_WORDS = 16  # a sentence alone on its line and shorter than this is a heading


@dataclass(frozen=True)
class Weights:
    """How much each signal counts in a sentence's score, and how much a repeat costs (maximal marginal relevance).

    Attributes:
        centrality: weight of the cosine to the mean sentence vector.
        title: weight of the cosine to the title's vector (used only when the title stands in the text).
        position: weight of the lead prior ``1 / (1 + index / position_scale)``.
        position_scale: how many sentences the lead prior takes to halve.
        redundancy: how much the closest already chosen sentence's cosine is taken off a candidate's score.
    """

    centrality: float = 1.0
    title: float = 0.5
    position: float = 0.6
    position_scale: float = 3.0
    redundancy: float = 0.5


DEFAULT_WEIGHTS = Weights()
# Per kind of request (qa.intent.Request.kind); the others use DEFAULT_WEIGHTS. A main argument: a third of the
# lead prior and half the diversity (the two sentences that best stand for the whole, even if one restates the
# other); a conclusion: the prior counted from the end. Set by reading articles: no public set of theses was at hand.
KIND_WEIGHTS = {
    "argument": Weights(centrality=1.0, title=0.5, position=0.2, position_scale=3.0, redundancy=0.25),
    "conclusion": Weights(centrality=1.0, title=0.5, position=0.6, position_scale=3.0, redundancy=0.5),
}
CUE_BONUS = 0.1
# Openings that announce a thesis or a conclusion.
CUES = {
    "argument": re.compile(r"^(?:in other words|the reason is|the point is|the bottom line is|in short|in sum|"
                           r"in essence|this means|i argue|we argue|i believe|my argument)\b", re.I),
    "conclusion": re.compile(r"^(?:in conclusion|to conclude|to sum up|to summari[sz]e|in sum|in summary|finally|"
                             r"ultimately|in the end|all in all|overall|therefore|thus|hence)\b", re.I),
}


@dataclass(frozen=True)
class Sentences:
    """A source's candidate key sentences and their unit vectors.

    Attributes:
        source_id: the source they come from.
        spans: ``(start, end)`` of each candidate in the source text, in document order.
        vectors: one unit vector per span, shape ``(len(spans), dimension)``.
        title: the title's unit vector, or None when the title does not stand in the text.
        openings: the first words of each sentence (for the cue phrases); empty: no cues.
    """

    source_id: str
    spans: tuple[tuple[int, int], ...]
    vectors: np.ndarray
    title: np.ndarray | None = None
    openings: tuple[str, ...] = ()


def candidate_spans(source: Source) -> list[tuple[int, int]]:
    """The sentences of ``source`` that may be key sentences, in order.

    Left out: the front matter (dateline, title, byline), the document's fields wherever they stand (byline, the
    author's bio, the "first appeared on" line), headings (a line that does not end a sentence, or a sentence of
    under ``HEADING_WORDS`` words alone on its line), questions, and fragments of under ``MIN_WORDS`` words.
    """
    text = source.text
    head = front_matter_end(text)
    fields = [(f.start, f.end) for f in document_fields(source)]
    # The whole paragraph of a field found in the closing lines: the bio's other sentences too.
    fields += [(p_start, p_end) for p_start, p_end in paragraphs(text) for f_start, f_end in fields
               if f_start >= head and p_start <= f_start < p_end]
    out = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        if end <= head or any(start < f_end and f_start < end for f_start, f_end in fields):
            continue
        if len(sentence.split()) < MIN_WORDS or sentence.rstrip("\"'”’)").endswith("?"):
            continue
        if sentence.rstrip("\"'”’)")[-1:] not in (".", "!") or _heading(text, start, end):
            continue
        out.append((start, end))
    return out


def _heading(text: str, start: int, end: int) -> bool:
    """A short sentence alone on its line ("Military coordination between the two adversaries: ...")."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    alone = not text[line_start:start].strip() and not text[end:line_end if line_end >= 0 else len(text)].strip()
    return alone and len(text[start:end].split()) < HEADING_WORDS


def embed_sentences(source: Source, encode: Callable[[list[str]], np.ndarray]) -> Sentences:
    """The candidate sentences of ``source`` with their vectors (``encode``: texts to unit vectors)."""
    spans = candidate_spans(source)
    titled = any(f.name == "title" for f in document_fields(source))
    texts = [source.text[s:e] for s, e in spans] + ([source.title] if titled else [])
    vectors = encode(texts) if texts else np.zeros((0, 1), dtype=np.float32)
    title = vectors[len(spans)] if titled and spans else None
    openings = tuple(source.text[s:e][:40] for s, e in spans)
    return Sentences(source.id, tuple(spans), vectors[: len(spans)], title, openings)


def scores(vectors: np.ndarray, title: np.ndarray | None = None, weights: Weights = DEFAULT_WEIGHTS) -> np.ndarray:
    """Each sentence's score: centrality, closeness to the title and the lead prior, weighted.

    Args:
        vectors: unit sentence vectors, in document order.
        title: the title's unit vector, if any.
        weights: the weights.
    Returns:
        One score per sentence.
    """
    n = len(vectors)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    centroid = vectors.mean(axis=0)
    centroid = centroid / (np.linalg.norm(centroid) or 1.0)
    out = weights.centrality * (vectors @ centroid)
    if title is not None:
        out = out + weights.title * (vectors @ title)
    out = out + weights.position / (1.0 + np.arange(n) / weights.position_scale)
    return out


def select(vectors: np.ndarray, score: np.ndarray, n: int, redundancy: float = DEFAULT_WEIGHTS.redundancy,
           among: Sequence[int] | None = None) -> list[int]:
    """Pick ``n`` sentences by maximal marginal relevance; their indices in document order.

    Args:
        vectors: unit sentence vectors.
        score: each sentence's score.
        n: how many to pick (fewer when there are fewer).
        redundancy: the weight of the cosine to the closest sentence already picked, taken off the score.
        among: the indices to pick from (default: all).
    """
    pool = list(range(len(vectors)) if among is None else among)
    chosen: list[int] = []
    while pool and len(chosen) < n:
        if chosen:
            overlap = (vectors[pool] @ vectors[chosen].T).max(axis=1)
            best = pool[int(np.argmax(score[pool] - redundancy * overlap))]
        else:
            best = pool[int(np.argmax(score[pool]))]
        chosen.append(best)
        pool.remove(best)
    return sorted(chosen)


def key_sentences(sentences: Sentences, n: int, kind: str = "summary",
                  weights: Weights | None = None) -> list[tuple[int, int]]:
    """The ``n`` key sentences of a source, as ``(start, end)`` spans in document order.

    Args:
        sentences: the source's candidates and vectors (:func:`embed_sentences`).
        n: how many.
        kind: the request's kind (:class:`qa.intent.Request`); a ``conclusion`` is chosen from the last third of
            the body, with the position prior counted from the end.
        weights: the weights (default: the kind's, ``KIND_WEIGHTS``, else ``DEFAULT_WEIGHTS``).
    """
    weights = weights or KIND_WEIGHTS.get(kind, DEFAULT_WEIGHTS)
    vectors, count = sentences.vectors, len(sentences.spans)
    if count == 0:
        return []
    among = None
    if kind == "conclusion":
        score = scores(vectors[::-1], sentences.title, weights)[::-1]  # the prior from the end
        among = range(min(count - 1, (2 * count) // 3), count)
    else:
        score = scores(vectors, sentences.title, weights)
    cue = CUES.get(kind)
    if cue is not None and sentences.openings:
        score = score + CUE_BONUS * np.array([bool(cue.match(o)) for o in sentences.openings])
    picked = select(vectors, score, n, weights.redundancy, among)
    return [sentences.spans[i] for i in picked]


def key_sentence_answer(question: str, source: Source, spans: Sequence[tuple[int, int]]) -> Answer:
    """The answer made of key sentences: one citation per sentence, the text their lines.

    ``answer.text`` is the sentences one per line, in document order (None when the source has none);
    ``answer.kind`` is ``"key_sentences"`` and ``answer.score`` 1.0 (chosen, not read: there is no reader
    probability).
    """
    citations = [cite(source, start, end) for start, end in spans]
    if not citations:
        return Answer(question, None, 0.0, kind="key_sentences")
    text = "\n".join(source.text[start:end] for start, end in spans)
    return Answer(question, text, 1.0, citations, kind="key_sentences")
