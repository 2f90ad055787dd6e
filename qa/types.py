"""The plain dataclasses that cross module boundaries: sources, passages, citations and answers."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


def content_id(text: str) -> str:
    """A source's identity: the first 16 hex digits of the SHA-256 of its text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Source:
    """One document the engine answers from; every offset in the index points into ``text``.

    Attributes:
        id: content hash of ``text`` (see :func:`content_id`).
        title: a human title (first line, HTML title, or file name).
        origin: where it came from: a file path or a URL.
        text: the full extracted text.
        date: a date the text carries, as written, or "".
        added: ISO time it entered the index, or "".
    """

    id: str
    title: str
    origin: str
    text: str
    date: str = ""
    added: str = ""

    @classmethod
    def from_text(cls, text: str, title: str, origin: str, date: str = "") -> "Source":
        return cls(content_id(text), title, origin, text, date)

    def meta(self) -> dict:
        """Everything but the text (for the manifest and listings)."""
        return {k: v for k, v in asdict(self).items() if k != "text"}


@dataclass(frozen=True)
class Passage:
    """A slice of a source: ``source.text[start:end] == text`` always holds."""

    source_id: str
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class ScoredPassage:
    """A passage returned by retrieval, with its rank score (higher is better) and index position."""

    passage: Passage
    score: float
    position: int


@dataclass(frozen=True)
class Citation:
    """Where an answer stands in its source.

    ``start``/``end`` slice the source text to the answer; ``quote`` is the sentence(s) around it,
    ``source.text[quote_start:quote_end] == quote``.
    """

    source_id: str
    title: str
    origin: str
    start: int
    end: int
    quote: str
    quote_start: int
    quote_end: int

    def to_dict(self) -> dict:
        return {
            "source": self.source_id,
            "title": self.title,
            "origin": self.origin,
            "start": self.start,
            "end": self.end,
            "quote": self.quote,
            "quote_start": self.quote_start,
            "quote_end": self.quote_end,
        }


@dataclass(frozen=True)
class Candidate:
    """A scored answer candidate (the best one becomes the answer unless the engine abstains)."""

    text: str
    score: float
    probability: float
    citation: Citation


@dataclass
class Answer:
    """The engine's reply to one question.

    Attributes:
        question: the question as asked (after truncation, if any).
        text: the answer span, or None when the sources do not answer the question.
        score: confidence in [0, 1] (the best candidate's probability), 0 when abstaining.
        citations: where the answer stands; empty when abstaining.
        passages: the retrieved passages that were read, best first.
        candidates: other scored candidates (the answer first, when there is one).
        query: the question as rewritten with the chat history (equal to ``question`` without history).
        notices: remarks for the user (for example, that the question was truncated).
        timings: seconds spent per stage.
        reader: the name of the reader whose answer this is (with the cascade reader, the one that answered).
        kind: ``"span"``, a span the reader picked (one citation), or ``"key_sentences"``, the answer to a
            question about the whole document: the document's key sentences, one per line of ``text``, each
            with its citation, in document order (:mod:`qa.summary`).
    """

    question: str
    text: str | None
    score: float
    citations: list[Citation] = field(default_factory=list)
    passages: list[ScoredPassage] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    query: str = ""
    notices: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reader: str = ""
    kind: str = "span"

    @property
    def abstained(self) -> bool:
        return self.text is None

    @property
    def confidence(self) -> float:
        """How sure the reader is of what it said: the answer's probability, or for an abstention the probability
        the reader left for no answer (what its candidates do not take)."""
        if self.text is not None:
            return self.score
        return max(0.0, 1.0 - sum(c.probability for c in self.candidates))

    def to_dict(self) -> dict:
        """The JSON shape of ``qa ask --json`` and the web API."""
        return {
            "question": self.question,
            "answer": self.text,
            "score": round(self.score, 4),
            "citations": [c.to_dict() for c in self.citations],
            "candidates": [
                {"answer": c.text, "score": round(c.probability, 4), "citation": c.citation.to_dict()}
                for c in self.candidates
            ],
            "passages": [
                {"source": p.passage.source_id, "start": p.passage.start, "end": p.passage.end,
                 "score": round(p.score, 4), "text": p.passage.text}
                for p in self.passages
            ],
            "query": self.query or self.question,
            "notices": list(self.notices),
            "reader": self.reader,
            "kind": self.kind,
        }
