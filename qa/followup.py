"""Follow-up questions without a generative model: resolve pronouns and ellipsis from the chat history.

Two rewrites of a follow-up question:

* for **reading**, a third-person pronoun that has no referent in the question itself is replaced by
  the previous turn's subject: the named thing it asked about when it asked who or what that is ("What
  did he tweet?" after "Who is Hamid Aboutalebi?" becomes "What did Hamid Aboutalebi tweet?"), or else
  the previous answer when that looks like a name or noun phrase ("Who does he report to?" after "Who
  is the commander of the Quds Force?", answered "Qassem Suleimani", becomes "Who does Qassem Suleimani
  report to?");
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
# "Who is X?", "What was X?", "Who's X?": a question that asks who or what X is.
_IDENTITY = re.compile(r"^\s*(?:who|what)(?:'s|’s|\s+(?:is|was|are|were))\s+(?P<subject>.+?)\s*[?!.]*\s*$",
                       re.IGNORECASE)
# Lowercase words that may stand inside a name ("Islamic Republic of Iran", "Nouri al-Maliki").
_NAME_JOINERS = {"of", "the", "and", "for", "on", "in", "al", "bin", "ibn", "de", "van", "von", "da", "del", "la", "le"}


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


def _is_name(words: list[str]) -> bool:
    """Whether the words are a name: capitalised, with lowercase joiners only between capitalised words."""
    def capitalised(word: str) -> bool:
        prefix, _, rest = word.partition("-")  # "al-Maliki"
        return word[:1].isupper() or word[:1].isdigit() or (prefix.lower() in _NAME_JOINERS and rest[:1].isupper())

    return bool(words) and capitalised(words[0]) and capitalised(words[-1]) \
        and all(capitalised(w) or w.lower() in _NAME_JOINERS for w in words)


def named_subject(question: str) -> str | None:
    """The named thing a question asks who or what it is: "Hamid Aboutalebi" in "Who is Hamid Aboutalebi?".

    A leading "the" is kept ("What is the Quds Force?" gives "the Quds Force"). A description is not a
    name ("Who is the commander of the Quds Force?" gives None: its answer names the person).

    Returns:
        The subject as written in the question, or None.
    """
    m = _IDENTITY.match(question)
    if m is None:
        return None
    subject = m.group("subject")
    words = subject.split()
    article = words[0].lower() in {"the", "a", "an"} if words else False
    return subject if _is_name(words[1:] if article else words) else None


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
        A dangling pronoun becomes the previous question's :func:`named_subject` when it has one, else the
        previous answer when that looks like a name.
    """
    if not history or not needs_context(question):
        return Query(question, question)
    last = history[-1]
    context = " ".join(x for x in (last.question, last.answer or "") if x)
    read = question
    referent = named_subject(last.question)
    if referent is None and last.answer and _looks_like_entity(last.answer):
        referent = last.answer.strip()
    if referent and _dangling_pronoun(question):
        read = _substitute(question, referent)
    return Query(read, f"{read} {context}".strip(), True)
