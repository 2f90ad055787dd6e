"""Questions about the whole document ("Summarize the article", "What is the author's main argument?").

An extractive reader answers a question with one span of one passage; a question about the whole document has no
such span. :func:`whole_document_request` recognises these questions by their intent words (summary, gist,
overview, about, main point, argument, thesis, conclusion, key points, takeaways, tl;dr ...) when they ask them
of the document itself ("the article", "this piece", "the author", "it") or of nothing at all. A question with
another object is an ordinary question: "What did the article say about Suleimani?", "What is the conclusion of
the nuclear talks?" and "What is ISIS?" are read as usual.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# How many key sentences answer each kind of request.
SENTENCES = {"gist": 3, "summary": 4, "key_points": 5, "argument": 2, "conclusion": 2}
MAX_SENTENCES = 8

_DOC_NOUN = (r"(?:news\s+)?(?:article|story|piece|post|essay|op-?ed|column|editorial|document|text|"
             r"blog(?:\s+post)?|report|page|source|commentary|analysis)")
_DOC = rf"(?:(?:the|this|that|your)\s+(?:whole\s+|entire\s+|full\s+|above\s+|above-mentioned\s+)?{_DOC_NOUN}|it|this)"
_AUTHOR = r"(?:(?:the|this|its)\s+(?:author|writer|columnist))"
_SUBJECT = rf"(?:{_DOC}|{_AUTHOR})"
_POSSESSIVE = rf"(?:(?:{_DOC}|{_AUTHOR})'s|its)"

# Nouns that ask for the whole document on their own, and the kind of request each makes.
_STRONG_NOUNS = {
    "summary": "summary", "summarization": "summary", "summarisation": "summary", "synopsis": "summary",
    "overview": "summary", "recap": "summary", "rundown": "summary",
    "gist": "gist", "tl;dr": "gist", "tldr": "gist", "tl dr": "gist", "nutshell": "gist",
    "thesis": "argument", "argument": "argument", "contention": "argument",
    "arguments": "key_points", "takeaways": "key_points", "highlights": "key_points", "key points": "key_points",
    "conclusion": "conclusion", "conclusions": "conclusion", "bottom line": "conclusion", "upshot": "conclusion",
}
# Nouns that do only with a qualifier ("main point") or the document named ("the point of the article").
_WEAK_NOUNS = {
    "point": "argument", "idea": "argument", "message": "argument", "claim": "argument", "view": "argument",
    "opinion": "argument", "position": "argument", "stance": "argument", "case": "argument",
    "takeaway": "argument", "lesson": "argument",
    "points": "key_points", "ideas": "key_points", "messages": "key_points", "claims": "key_points",
    "facts": "key_points", "findings": "key_points", "lessons": "key_points", "issues": "key_points",
    "themes": "key_points", "details": "key_points",
    "topic": "gist", "subject": "gist", "theme": "gist", "focus": "gist", "story": "gist",
}
_QUALIFIERS = {"main", "key", "central", "core", "overall", "basic", "primary", "principal", "major", "important",
               "chief", "essential", "underlying", "big", "general", "final", "ultimate", "top", "most", "biggest",
               "crucial", "salient", "bottom"}
_ADJECTIVE = (r"(?:main|key|central|core|overall|basic|primary|principal|major|most|important|chief|essential|"
              r"underlying|big|biggest|general|final|ultimate|top|crucial|salient|quick|brief|short|concise|simple|"
              r"high-level|[a-z]+-(?:sentence|line|word|paragraph)|\d+|one|two|three|four|five|six|seven|eight|few|"
              r"couple\s+of)")
_NOUN = "|".join(re.escape(n).replace(r"\ ", r"\s+") for n in sorted({*_STRONG_NOUNS, *_WEAK_NOUNS}, key=len,
                                                                      reverse=True))

_ASK = (r"(?:what(?:\s+(?:is|are|was|were|would\s+be|might\s+be)|'s|'re)|which\s+(?:is|are)|tell\s+me|"
        r"give\s+me|show\s+me|list|share|provide|name|state|identify|explain|describe|outline|summari[sz]e|"
        r"i\s+(?:want|need|would\s+like)|i'd\s+like|let's\s+(?:have|get|hear))")
_NOUN_QUESTION = re.compile(
    rf"^(?:{_ASK}\s+)?(?:(?:a|an|the|some|your|me\s+the)\s+)?(?P<poss>{_POSSESSIVE}\s+)?"
    rf"(?P<adjs>(?:{_ADJECTIVE}\s+)*)(?P<noun>{_NOUN})"
    rf"(?P<of>\s+(?:of|in|from|behind|for|on|made\s+(?:in|by)|presented\s+(?:in|by)|raised\s+(?:in|by))\s+{_SUBJECT})?"
    rf"(?P<made>\s+(?:(?:that|which)\s+)?(?:{_SUBJECT}\s+)?(?:makes?|made|presents?|presented|puts?\s+forward|"
    rf"advances?|gives?|offers?|draws?|drawn|reaches?|comes?\s+to|raised?|discussed|covered|has))?$")
_VERBS = {
    "say": "summary", "saying": "summary", "discuss": "summary", "discussing": "summary", "cover": "summary",
    "covering": "summary", "talk about": "summary", "talking about": "summary", "deal with": "summary",
    "describe": "summary", "describing": "summary", "explain": "summary", "explaining": "summary",
    "tell us": "summary", "tell me": "summary", "report": "summary", "reporting": "summary",
    "argue": "argument", "arguing": "argument", "claim": "argument", "claiming": "argument",
    "suggest": "argument", "suggesting": "argument", "propose": "argument", "proposing": "argument",
    "want to say": "argument", "trying to say": "argument", "try to say": "argument", "getting at": "argument",
    "get at": "argument", "think": "argument", "believe": "argument", "recommend": "argument",
    "advocate": "argument", "advocating": "argument", "contend": "argument", "mean": "argument",
    "conclude": "conclusion", "concluding": "conclusion",
}
_VERB = "|".join(re.escape(v).replace(r"\ ", r"\s+") for v in sorted(_VERBS, key=len, reverse=True))
_VERB_QUESTION = re.compile(
    rf"^(?:what|so\s+what)\s+(?:does|did|do|is|was|will)\s+{_SUBJECT}\s+(?:(?:mainly|basically|really|actually|"
    rf"ultimately|essentially|generally|primarily|overall|finally|in\s+the\s+end)\s+)?(?P<verb>{_VERB})$")
_ABOUT_QUESTION = re.compile(
    rf"^(?:what(?:\s+(?:is|was)|'s)\s+{_DOC}\s+(?:(?:mainly|mostly|really|all|actually|basically|primarily|"
    rf"generally|even|essentially)\s+)?about|(?:tell\s+me|what\s+do\s+i\s+need\s+to\s+know)\s+about\s+{_DOC}|"
    rf"what\s+happens\s+in\s+{_DOC}|what\s+(?:is|was)\s+{_DOC}\s+(?:mainly\s+)?(?:saying|arguing|discussing))$")
_IMPERATIVE = re.compile(
    rf"^(?:(?P<any>summari[sz]e|recap|tl;?\s?dr|condense|sum\s+up|sum\s+{_DOC}\s+up)(?:\s+{_DOC})?|"
    rf"(?:explain|describe|outline|digest|brief\s+me\s+on|go\s+over|break\s+down|walk\s+me\s+through)\s+{_DOC}|"
    rf"(?:in\s+(?:a\s+)?nutshell|in\s+short|in\s+brief))$")

_LEADING = re.compile(r"^(?:(?:please|ok|okay|so|hey|hi|now|well|and|also|then|quickly|briefly)[,!]?\s+|"
                      r"(?:can|could|would|will)\s+you(?:\s+please)?\s+|in\s+(?:short|brief|a\s+nutshell),?\s+)")
_TRAILING = re.compile(r"(?:,?\s+(?:please|for\s+me|for\s+us|briefly|quickly|in\s+short|in\s+brief|"
                       r"in\s+a\s+nutshell|in\s+(?:a\s+few|\d+|one|two|three|four|five|six|seven|eight)\s+"
                       r"(?:sentences?|words|lines|bullets?|bullet\s+points|points|paragraphs?)|"
                       r"(?:with|as)\s+(?:a\s+list|bullets?|bullet\s+points)))$")
_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_COUNT = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight)\s+(?:[a-z-]+\s+)?(?:sentences?|points?|"
                    r"takeaways?|bullets?|bullet\s+points|lines|arguments|ideas|things|facts|highlights)\b")


@dataclass(frozen=True)
class Request:
    """What a whole-document question asks for.

    Attributes:
        kind: ``gist`` (what it is about), ``summary``, ``key_points``, ``argument`` (main argument, thesis) or
            ``conclusion``.
        sentences: how many of the document's key sentences answer it.
    """

    kind: str
    sentences: int


def _normalise(question: str) -> str:
    text = " ".join(question.lower().replace("’", "'").replace("‘", "'").split())
    text = re.sub(r"[\s?.!:]+$", "", text)
    for _ in range(3):  # "ok, so can you please ..."
        text = _LEADING.sub("", text)
        text = _TRAILING.sub("", text).strip(" ,")
    return text


def whole_document_request(question: str) -> Request | None:
    """What ``question`` asks of the whole document, or None for an ordinary question.

    Args:
        question: the question as the user typed it.
    Returns:
        The kind of request and how many key sentences answer it (a number the question names, "in three
        sentences", "5 key points", wins over the kind's default, up to ``MAX_SENTENCES``).
    """
    text = _normalise(question)
    kind = _kind(text)
    if kind is None:
        return None
    count = _COUNT.search(question.lower())
    n = SENTENCES[kind]
    if count:
        word = count.group(1)
        n = int(word) if word.isdigit() else _NUMBERS[word]
    return Request(kind, max(1, min(n, MAX_SENTENCES)))


def _kind(text: str) -> str | None:
    if not text:
        return None
    m = _IMPERATIVE.match(text)
    if m:
        return "summary" if m.group("any") and not m.group("any").startswith("tl") else "gist"
    if _ABOUT_QUESTION.match(text):
        return "gist"
    m = _VERB_QUESTION.match(text)
    if m:
        return _VERBS[" ".join(m.group("verb").split())]
    m = _NOUN_QUESTION.match(text)
    if m:
        noun = " ".join(m.group("noun").split())
        if noun in _STRONG_NOUNS:
            return _STRONG_NOUNS[noun]
        adjectives = set(m.group("adjs").split())
        if adjectives & _QUALIFIERS or m.group("poss") or m.group("of"):
            return _WEAK_NOUNS[noun]
    return None
