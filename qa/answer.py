"""From reader spans to an Answer: map offsets to the source, merge duplicates, score, abstain."""

from __future__ import annotations

import math

from qa.chunking import enclosing_sentences
from qa.metadata import Card
from qa.reader import Reading, Span
from qa.types import Answer, Candidate, Citation, ScoredPassage, Source


def cite(source: Source, start: int, end: int) -> Citation:
    """A citation of ``source.text[start:end]`` quoting the sentence(s) around it."""
    q_start, q_end = enclosing_sentences(source.text, start, end)
    return Citation(source.id, source.title, source.origin, start, end, source.text[q_start:q_end], q_start, q_end)


def softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _locate(span: Span, passages: list[ScoredPassage], cards: list[Card]) -> tuple[str, int, int] | None:
    """(source id, start, end) of a reader span in its source; None for a span on a card's own words."""
    if span.passage_index < len(passages):
        p = passages[span.passage_index].passage
        return p.source_id, p.start + span.start, p.start + span.end
    card = cards[span.passage_index - len(passages)]
    where = card.to_source(span.start, span.end)
    return (card.source_id, *where) if where else None


def build_answer(question: str, reading: Reading, passages: list[ScoredPassage], sources: dict[str, Source], *,
                 no_answer_threshold: float = 0.0, min_answer_prob: float = 0.0, n_best: int = 5,
                 cards: list[Card] | None = None) -> Answer:
    """Turn the reader's spans over retrieved passages into an :class:`Answer`.

    Spans read in overlapping passages that land on the same source characters are merged (the best
    score kept). Probabilities are a softmax over the merged candidates and the no-answer score, so they
    are comparable across passages. The engine abstains (``text`` None) when the best span does not
    beat the no-answer score by ``no_answer_threshold`` logits, or its probability is under ``min_answer_prob``.

    Args:
        question: the question as shown to the user.
        reading: the reader's output over ``[p.passage.text for p in passages]``.
        passages: the retrieved passages, in the order given to the reader.
        sources: the index's sources by id.
        cards: document cards read after the passages (span ``passage_index`` past the passages);
            a span on a card's value is cited at that value's place in the source.
    Returns:
        The answer with citations and candidates, or an abstention with the passages that were read.
    """
    merged: dict[tuple[str, int, int], float] = {}
    for span in reading.spans:
        key = _locate(span, passages, cards or [])
        if key is not None:
            merged[key] = max(merged.get(key, -math.inf), span.score)
    ranked = sorted(merged.items(), key=lambda kv: -kv[1])[:n_best]
    if not ranked:
        return Answer(question, None, 0.0, passages=passages)
    probs = softmax([s for _, s in ranked] + [reading.no_answer_score])
    candidates = []
    for ((sid, start, end), score), prob in zip(ranked, probs):
        source = sources[sid]
        candidates.append(Candidate(source.text[start:end], score, prob, cite(source, start, end)))
    best = candidates[0]
    margin = best.score - reading.no_answer_score
    if margin < no_answer_threshold or best.probability < min_answer_prob:
        return Answer(question, None, 0.0, passages=passages, candidates=candidates)
    return Answer(question, best.text, best.probability, [best.citation], passages, candidates)


def best_guess(answer: Answer) -> str | None:
    """The answer, or when the engine held it back, the candidate the reader still preferred to no answer.

    An abstention keeps its candidates; the best one beat the no-answer score (the reader's own choice)
    when its probability is above what the candidates leave for no answer. Used to resolve "he" or "it"
    in a follow-up question: a best guess steers the next retrieval, whose answer must pass the
    threshold on its own.

    Returns:
        The answer text, the preferred candidate's text, or None.
    """
    if answer.text is not None or not answer.candidates:
        return answer.text
    no_answer = 1.0 - sum(c.probability for c in answer.candidates)
    best = answer.candidates[0]
    return best.text if best.probability > no_answer else None
