"""What a document says about itself: title, dates, author and publisher, with offsets into its text.

A question about the document ("When was the article published?", "Who wrote this piece?") is not
answered by a sentence of its body but by its front matter and closing lines. This module finds those
fields with the conventions of news articles and blog posts (a dateline and title before the body; a
byline "By ..."; an author's bio at the end, "Name, a ..., is ..." or "Name is a ..."; a closing
"This post first appeared on ...") and uses them twice:

* :func:`search_text` labels the passages that hold them with field names, as a search engine indexes
  metadata fields, so that retrieval finds them for questions about the document;
* :func:`document_card` writes them as a short *card* of plain sentences ("The article was published on
  06/25/2014.") in which every value is a slice of the source text. The reader reads the card like a
  passage; a span it picks inside a value maps back to source offsets (:meth:`Card.to_source`), so the
  answer is cited like any other and competes with the body's spans on the same scores.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from qa.chunking import enclosing_sentences, front_matter_end
from qa.sources import DATE_RE
from qa.types import Passage, Source

_NAME = r"[A-Z][\w'’.-]+(?:\s+(?:[A-Z][\w'’.-]+|de|van|von|al|bin|da|del|la|le)){1,3}"
_BYLINE = re.compile(rf"^\s*(?:by|written by|author:)\s+(?P<name>{_NAME})\b", re.I | re.M)
_BIO = re.compile(rf"^(?P<name>{_NAME})(?:,\s+(?:an?|the)\s+[^,\n]{{3,160}},\s+|\s+)(?:is|was|has been|teaches|writes)\b")
_PUBLISHER = re.compile(
    r"\b(?:first|originally)\s+(?:appeared|published|ran|posted)\s+(?:on|in|at|by)\s+(?:the\s+)?"
    r"(?P<name>[A-Z][^\n.!?]{1,60}?)\s*[.!]?\s*$", re.M)
_UPDATED = re.compile(r"\b(?:updated|modified|revised|edited)\b[^\w]*(?:on\s+)?$", re.I)
_CLOSING_PARAGRAPHS = 3
_BIO_MAX_WORDS = 80

_DOCUMENT_WORDS = re.compile(
    r"\b(?:(?:the|this|that)\s+(?:article|story|piece|post|essay|op-?ed|column|editorial|document|"
    r"blog(?:\s*post)?)(?!\s+of\b)|authors?|writers?|wrote|written|headline|title|published|publication|"
    r"byline|publisher|posted)\b", re.I)


@dataclass(frozen=True)
class Field:
    """One fact a document gives about itself: ``source.text[start:end]`` is its value.

    ``name`` is one of ``title``, ``published``, ``updated``, ``author``, ``author_bio`` (the whole bio
    sentence) and ``publisher``.
    """

    name: str
    start: int
    end: int


@dataclass(frozen=True)
class Card:
    """The fields of one source written as sentences for the reader.

    Attributes:
        source_id: the source the values come from.
        text: the card's text.
        slices: ``(card_start, card_end, source_start)`` of each value copied from the source.
    """

    source_id: str
    text: str
    slices: tuple[tuple[int, int, int], ...]

    def to_source(self, start: int, end: int) -> tuple[int, int] | None:
        """Source offsets of the card span ``[start, end)``: its overlap with the value it falls in.

        Returns None when the span lies only on the card's own words (no value to cite).
        """
        best: tuple[int, int, int] | None = None
        for c_start, c_end, s_start in self.slices:
            lo, hi = max(start, c_start), min(end, c_end)
            if hi > lo and (best is None or hi - lo > best[1] - best[0]):
                best = (lo, hi, s_start - c_start)
        if best is None:
            return None
        return best[0] + best[2], best[1] + best[2]


def paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of the non-empty blocks separated by blank lines."""
    out = []
    for m in re.finditer(r"(?:[^\n]|\n(?![ \t]*\n))+", text):
        block = m.group()
        if block.strip():
            start = m.start() + len(block) - len(block.lstrip())
            out.append((start, m.start() + len(block.rstrip())))
    return out


@functools.lru_cache(maxsize=256)
def document_fields(source: Source) -> tuple[Field, ...]:
    """The title, dates, author, author bio and publisher that ``source`` states, where found.

    Args:
        source: the document.
    Returns:
        The fields found, each at most once, in the order listed in :class:`Field`.
    """
    text = source.text
    fields: dict[str, Field] = {}
    head_end = front_matter_end(text) or min(len(text), 300)
    head = text[:head_end]
    if source.title:
        at = text.find(source.title, 0, 2000)
        if at >= 0:
            fields["title"] = Field("title", at, at + len(source.title))
    for m in DATE_RE.finditer(head):
        name = "updated" if _UPDATED.search(head[max(0, m.start() - 30) : m.start()]) else "published"
        fields.setdefault(name, Field(name, m.start(), m.end()))
    byline = _BYLINE.search(head)
    if byline:
        fields["author"] = Field("author", byline.start("name"), byline.end("name"))
    for start, end in paragraphs(text)[-_CLOSING_PARAGRAPHS:]:
        block = text[start:end]
        bio = _BIO.match(block)
        if bio and "author" not in fields and len(block.split()) <= _BIO_MAX_WORDS:
            fields["author"] = Field("author", start + bio.start("name"), start + bio.end("name"))
            s_start, s_end = enclosing_sentences(text, start, start + bio.end())
            fields["author_bio"] = Field("author_bio", s_start, s_end)
        publisher = _PUBLISHER.search(block)
        if publisher:
            fields["publisher"] = Field("publisher", start + publisher.start("name"), start + publisher.end("name"))
    order = ["title", "published", "updated", "author", "author_bio", "publisher"]
    return tuple(fields[name] for name in order if name in fields)


# The card's sentences: the words around each value; {} is the value.
_CARD_TEMPLATES = {
    "title": "The title (headline) of the article is {}.",
    "published": "The article was published (dated) on {}.",
    "updated": "It was last updated on {}.",
    "author": "The article was written by {}, its author.",
    "author_bio": "About the author: {}",
    "publisher": "The publisher of the article is {}.",
}

# Field names that label the passages holding them, for retrieval.
_SEARCH_LABELS = {
    "title": "Title", "published": "date published", "updated": "updated",
    "author": "author, written by", "publisher": "publisher, first published in",
}


def document_card(source: Source) -> Card | None:
    """The card of ``source``'s fields, or None when it states none."""
    parts: list[str] = []
    slices: list[tuple[int, int, int]] = []
    length = 0
    for f in document_fields(source):
        before, after = _CARD_TEMPLATES[f.name].split("{}")
        value = source.text[f.start : f.end]
        start = length + len(before)
        slices.append((start, start + len(value), f.start))
        sentence = before + value + after
        parts.append(sentence)
        length += len(sentence) + 1
    if not parts:
        return None
    return Card(source.id, " ".join(parts), tuple(slices))


def refers_to_document(question: str) -> bool:
    """Whether a question asks about the document itself (its title, date, author, publisher)."""
    return bool(_DOCUMENT_WORDS.search(question))


def author_name(source: Source) -> str | None:
    """The author's name the source states, if any."""
    for f in document_fields(source):
        if f.name == "author":
            return source.text[f.start : f.end]
    return None


# "the author's X" (possessive) or "X of the author": the forms that ask about the author, not who it is.
_AUTHOR_REFERENCE = re.compile(
    r"\b(?:the|this|its)\s+(?:author|writer)(?P<possessive>'s|’s)|(?<=\bof )(?:the|this)\s+(?:author|writer)\b", re.I)


def name_the_author(question: str, source: Source) -> str:
    """``question`` with "the author's ..." / "... of the author" written with the author's name.

    The reader then links the question to the sentences about that person ("What is the author's
    profession?" reads "What is Ana Lopez's profession?"). A question that asks who the author is
    keeps its words, so that the card's "written by" sentence answers it.
    """
    name = author_name(source)
    if not name:
        return question
    return _AUTHOR_REFERENCE.sub(lambda m: f"{name}'s" if m.group("possessive") else name, question)


def search_text(passage: Passage, source: Source) -> str:
    """The text retrieval matches a passage by: the source title, field labels, then the passage.

    A passage that holds one of the document's fields (its title and dates in the front matter, its
    author, its publisher) is labelled with the field names, so questions about the document reach it.
    """
    labels = [_SEARCH_LABELS[f.name] for f in document_fields(source)
              if f.name in _SEARCH_LABELS and passage.start <= f.start and f.end <= passage.end]
    if labels:
        return f"{source.title}\n{', '.join(labels)}: {passage.text}"
    return f"{source.title}\n{passage.text}"
