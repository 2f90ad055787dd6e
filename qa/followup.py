"""Follow-up questions without a generative model: resolve pronouns and ellipsis from the chat history.

Two rewrites of a follow-up question:

* for **reading**, a third-person pronoun that has no referent in the question itself is replaced by
  the previous turn's answer when that answer looks like a name or noun phrase ("Who does he report
  to?" after the answer "Qassem Suleimani" becomes "Who does Qassem Suleimani report to?");
* for **retrieval**, the question is extended with the previous question and answer, so the passages
  about the topic of the conversation are found even when the question names nothing.

A question that names its own subject (no dangling pronoun and not elliptical) is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PRONOUN = re.compile(r"\b(he|she|him|his|her|hers|they|them|their|theirs|it|its)\b", re.IGNORECASE)
_POSSESSIVE = {"his", "her", "hers", "their", "theirs", "its"}
_OBJECT = {"him", "them"}
# Short questions that continue the previous one: "And the second?", "What about Iran?", "Why?"
_ELLIPSIS = re.compile(r"^\s*(and|what about|how about|how so|why|when|where)\b[^?]{0,20}\??\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Turn:
    """An earlier exchange of the chat: the question and the answer given (None if it abstained)."""

    question: str
    answer: str | None = None


@dataclass(frozen=True)
class Query:
    """The question to read and the text to search with."""

    read: str
    search: str
    rewritten: bool = False


def _dangling_pronoun(question: str) -> re.Match | None:
    """The first pronoun with no candidate referent before it (no name after the first word)."""
    m = _PRONOUN.search(question)
    if m is None:
        return None
    before = question[: m.start()].split()[1:]
    if any(w[:1].isupper() for w in before):
        return None
    return m


def needs_context(question: str) -> bool:
    """True when the question leans on an earlier turn: a dangling pronoun, or an elliptical opening."""
    return bool(_dangling_pronoun(question) or _ELLIPSIS.match(question))


def _substitute(question: str, referent: str) -> str:
    def repl(m: re.Match) -> str:
        word = m.group(1).lower()
        if word in _POSSESSIVE and not (word == "her" and _object_position(question, m.end())):
            return f"{referent}'s"
        return referent

    return _PRONOUN.sub(repl, question, count=1)


def _object_position(question: str, end: int) -> bool:
    """'her' followed by '?', punctuation or a function word is an object ('Who criticised her?')."""
    rest = question[end:].lstrip()
    return not rest or not rest[0].isalnum() or rest.split()[0].lower() in {"to", "for", "in", "on", "at", "about", "and"}


def _looks_like_entity(answer: str) -> bool:
    words = answer.split()
    return 0 < len(words) <= 8 and any(w[:1].isupper() for w in words)


def rewrite(question: str, history: list[Turn]) -> Query:
    """Rewrite ``question`` with the chat ``history`` (oldest first).

    Args:
        question: the new question.
        history: earlier turns; only the most recent one with content is used.
    Returns:
        The question for the reader and the text for retrieval; unchanged when no context is needed.
    """
    if not history or not needs_context(question):
        return Query(question, question)
    last = history[-1]
    context = " ".join(x for x in (last.question, last.answer or "") if x)
    read = question
    if last.answer and _looks_like_entity(last.answer) and _dangling_pronoun(question):
        read = _substitute(question, last.answer.strip())
    return Query(read, f"{read} {context}".strip(), True)
