"""The public face of the engine: ``Assistant.load``, ``ask``, ``ask_many``, ``retrieve``, ``add_sources``.

Only this module ties the rooms together: retrieval over the index, the reader over the retrieved
passages, and answer building with citations. Models are loaded once per process and shared by every
``Assistant`` (and every web session) that uses the same model paths.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
import unicodedata
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Sequence

from qa import building, index as index_store
from qa.answer import best_guess, build_answer
from qa.config import DEFAULT_INDEX_DIR, Settings
from qa.embedding import Embedder
from qa.followup import Query, Turn, needs_context, rewrite
from qa.intent import Request, whole_document_request
from qa.metadata import Card, document_card, name_the_author, refers_to_document
from qa.reader import Reader, Reading, Screen
from qa.readers import SCREENERS, reader_card, reader_label, reader_name, reader_stages
from qa.retrieval import Retriever
from qa.summary import Sentences, embed_sentences, key_sentence_answer, key_sentences
from qa.types import Answer, ScoredPassage, Source

log = logging.getLogger(__name__)

_MODELS: dict[tuple[str, str], object] = {}
_MODELS_LOCK = threading.Lock()


class QuestionError(ValueError):
    """The question cannot be asked (for example, it is empty)."""


def shared_embedder(name: str) -> Embedder:
    """The process-wide embedder for ``name`` (loaded on first use)."""
    with _MODELS_LOCK:
        key = ("embedder", name)
        if key not in _MODELS:
            _MODELS[key] = Embedder.load(name)
        return _MODELS[key]  # type: ignore[return-value]


def shared_reader(settings: Settings) -> Reader:
    """The process-wide reader for the configured path, runtime and decoding options."""
    options = dict(max_length=settings.reader_max_length, stride=settings.reader_stride,
                   max_answer_tokens=settings.max_answer_tokens, n_best=settings.n_best, use_bf16=settings.use_bf16)
    path = settings.reader_path()
    with _MODELS_LOCK:
        key = ("reader", path, settings.runtime)
        if key not in _MODELS:
            _MODELS[key] = Reader.load(path, runtime=settings.runtime)
        base: Reader = _MODELS[key]  # type: ignore[assignment]
    # Same weights, possibly other decoding options: a light view that shares model and tokenizer.
    reader = Reader(base.model, base.tokenizer, name=base.name, **options)
    reader._lock = base._lock
    return reader


def needs_rereading(answer: Answer, cut: float) -> bool:
    """Whether the cascade's second reader rereads a question the first one answered this way.

    Every abstention is reread (since 0.4.0: a fast reader's refusal is not final, the accurate reader may find
    the answer), and so is an answer whose confidence is under ``cut``.
    """
    return answer.abstained or answer.confidence < cut


def clean_question(question: object, max_chars: int) -> tuple[str, list[str]]:
    """Validate and normalise a question.

    Control characters are removed (emoji and other scripts are kept), whitespace collapsed, and a
    question longer than ``max_chars`` is cut there with a notice.

    Raises:
        QuestionError: not a string, or nothing left to ask.
    """
    if not isinstance(question, str):
        raise QuestionError(f"the question must be text, not {type(question).__name__}")
    text = "".join(ch if not unicodedata.category(ch).startswith("C") else " " for ch in question)
    text = " ".join(text.split())
    notices = []
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] or text[:max_chars]
        notices.append(f"The question was {len(question):,} characters long; only its first {len(text):,} "
                       "were used.")
    if not text:
        raise QuestionError("the question is empty: type a question about the article")
    return text, notices


class Assistant:
    """Answers questions about the indexed sources with extractive, cited spans.

    Use :meth:`load`; thread-safe for concurrent ``ask`` calls.
    """

    def __init__(self, index: index_store.Index, embedder: Embedder, reader: Reader | None,
                 settings: Settings) -> None:
        self.settings = settings
        # One reader, or a cascade's two: the first answers, the second rereads where the first is unsure. A reader
        # handed in is the only one: no cascade around it.
        self.stages = [settings.replace(reader=name) for name in reader_stages(settings.reader)] if reader is None \
            else [settings]
        # Each reader's calibration, read once: its no-answer threshold and its early-exit margin. A reader handed in
        # (not named by the settings) exits early only where the settings give a margin explicitly.
        self.thresholds = [settings.abstention_threshold()] + [stage.abstention_threshold() for stage in self.stages[1:]]
        self.no_answer_threshold = self.thresholds[0]
        self.exit_margins = [settings.early_exit_margin] if reader is not None else \
            [stage.exit_margin() for stage in self.stages]
        # Passage screening, per stage: the small reader that screens the passages read past the best one (a
        # cascade's first reader for its second; SCREENERS for a named reader alone) and the margin it must reach.
        # None: no screening (no screener, no margin, -inf, or a reader handed in).
        self.screeners: list[str | None] = [None] if reader is not None else \
            [SCREENERS.get(reader_name(self.stages[0].reader))] + [reader_name(s.reader) for s in self.stages[:-1]]
        self.screen_margins = [m if name is not None and m is not None and m > -math.inf else None
                               for name, m in zip(self.screeners, (s.screening_margin() for s in self.stages))]
        self.embedder = embedder
        self._reader = reader
        self._rereader: Reader | None = None
        self._screener: Reader | None = None
        self._set_index(index)
        self._history_cache: OrderedDict[tuple, str | None] = OrderedDict()
        self._sentence_cache: OrderedDict[str, Sentences] = OrderedDict()  # key-sentence vectors by source id
        self._write_lock = threading.Lock()

    def _set_index(self, index: index_store.Index) -> None:
        # Made searchable first, then swapped in; ask_many reads index and retriever from one snapshot.
        retriever = Retriever(index, self.embedder, self.settings.retrieval, self.settings.rrf_k,
                              self.settings.fusion_heads)
        self.retriever, self.index = retriever, index

    @classmethod
    def load(cls, index_dir: str | Path | None = None, *, reader: Reader | str | Path | None = None,
             **settings: object) -> "Assistant":
        """Load the index and the models.

        Args:
            index_dir: the index directory (default: the shipped ``index/``).
            reader: an already loaded reader to use instead of the configured one, or the ``reader`` setting
                (a transformers question-answering model folder or id).
            **settings: any :class:`qa.config.Settings` field, over ``QA_*`` environment variables.
        Raises:
            qa.config.ConfigError, qa.index.IndexFileError, qa.reader.ReaderError: with what to do about it.
        """
        if isinstance(reader, (str, Path)):
            settings["reader"], reader = str(reader), None
        config = Settings.from_env(**settings)
        embedder = shared_embedder(config.embedder)
        index = index_store.load(index_dir or DEFAULT_INDEX_DIR, embedder=config.embedder,
                                 dimension=embedder.dimension)
        return cls(index, embedder, reader, config)

    @property
    def reader(self) -> Reader:
        """The reader (a cascade's first), loaded on first use (retrieval-only use never loads it)."""
        if self._reader is None:
            self._reader = shared_reader(self.stages[0])
        return self._reader

    @property
    def rereader(self) -> Reader | None:
        """A cascade's second reader, loaded the first time a question needs it; None without a cascade."""
        if len(self.stages) < 2:
            return None
        if self._rereader is None:
            self._rereader = shared_reader(self.stages[1])
        return self._rereader

    @property
    def screener(self) -> Reader | None:
        """The small reader that screens the first stage's passages (``SCREENERS``), loaded the first time a question
        reads on; None where that stage is not screened."""
        if self.screen_margins[0] is None:
            return None
        if self._screener is None:
            self._screener = shared_reader(self.stages[0].replace(reader=self.screeners[0]))
        return self._screener

    def _screen(self, stage: int, read: Sequence[tuple[tuple[str, list[str]], Reading]] = ()) -> Screen | None:
        """The ``screen`` for stage ``stage``'s :meth:`~qa.reader.Reader.read_many`: a passage past the best one is
        read only where the screening reader's margin on it (:attr:`~qa.reader.Reading.passage_margins`) reaches the
        stage's screen margin. ``read``: items the screening reader has read already, with its readings (the
        cascade's first reader); it reads the other passages, in one batch. None where the stage is not screened."""
        margin = self.screen_margins[stage]
        if margin is None:
            return None
        known = {(q, p): m for (q, ps), reading in read for p, m in zip(ps, reading.passage_margins or ())
                 if m is not None}

        def screen(pairs: list[tuple[str, list[str]]]) -> list[list[bool]]:
            missing = [(q, [p for p in ps if (q, p) not in known]) for q, ps in pairs]
            missing = [(q, ps) for q, ps in missing if ps]
            if missing:
                reader = self.screener if stage == 0 else self.reader
                for (q, ps), margins in zip(missing, reader.passage_margins(missing)):
                    known.update({(q, p): m for p, m in zip(ps, margins)})
            return [[known[q, p] >= margin for p in ps] for q, ps in pairs]

        return screen

    # -- asking ---------------------------------------------------------------------------------

    def retrieve(self, question: str, k: int | None = None) -> list[ScoredPassage]:
        """The ``k`` best passages for ``question`` (default ``top_k``), best first."""
        text, _ = clean_question(question, self.settings.max_question_chars)
        return self.retriever.search([text], k or self.settings.top_k)[0]

    def ask(self, question: str, history: Sequence[str | Turn | dict | tuple] | None = None) -> Answer:
        """Answer one question.

        Args:
            question: the question.
            history: earlier turns of the chat, oldest first: questions (str), or ``Turn``/dict/tuple
                with the question and the answer given.
        Returns:
            The answer; ``answer.text`` is None when the sources do not answer the question.
        Raises:
            QuestionError: the question is empty or not text.
        """
        return self.ask_many([question], [history] if history else None)[0]

    def ask_many(self, questions: Sequence[str], histories: Sequence[Sequence | None] | None = None) -> list[Answer]:
        """Answer several questions with batched retrieval and reading.

        A question about the whole document ("Summarize the article", "What is the author's main argument?":
        :func:`qa.intent.whole_document_request`) is answered with the document's key sentences, each cited
        (``answer.kind == "key_sentences"``, :meth:`_key_sentences`); the others are read (:meth:`_read_many`).

        Raises:
            QuestionError: a question is empty or not text.
        """
        histories = list(histories) if histories is not None else [None] * len(questions)
        cleaned = [clean_question(q, self.settings.max_question_chars) for q in questions]
        requests = [whole_document_request(text) for text, _ in cleaned]
        answers: list[Answer | None] = [None] * len(questions)
        read = [i for i, request in enumerate(requests) if request is None]
        if read:
            for i, answer in zip(read, self._read_many([questions[i] for i in read], [histories[i] for i in read])):
                answers[i] = answer
        for i, request in enumerate(requests):
            if request is not None:
                answers[i] = self._key_sentences(*cleaned[i], request, histories[i])
        return answers  # type: ignore[return-value]

    def _read_many(self, questions: Sequence[str], histories: Sequence[Sequence | None] | None = None) -> list[Answer]:
        """Answer several questions by retrieval and reading, batched.

        With the cascade reader (``reader="auto"``) the first reader answers all of them; those it abstains on and
        those whose answer's :attr:`~qa.types.Answer.confidence` is under ``cascade_cut`` are read again, in one
        batch, by the second reader over the same passages, and its answers (held to its own calibrated threshold)
        replace them (:func:`needs_rereading`).
        """
        started = time.perf_counter()
        histories = list(histories) if histories is not None else [None] * len(questions)
        cleaned = [clean_question(q, self.settings.max_question_chars) for q in questions]
        queries = [self._query(text, h) for (text, _), h in zip(cleaned, histories)]
        t0 = time.perf_counter()
        retriever = self.retriever  # one index for the whole call, even if add_sources swaps it meanwhile
        retrieved = retriever.search([q.search for q in queries], self.settings.top_k)
        t1 = time.perf_counter()
        documents = [self._about_document(q.read, ps, retriever.index.sources) for q, ps in zip(queries, retrieved)]
        cards = [cs for _, cs in documents]
        items = [(read, [p.passage.text for p in ps] + [c.text for c in cs])
                 for (read, cs), ps in zip(documents, retrieved)]
        readings = self.reader.read_many(items, self.settings.n_best, exit_margin=self.exit_margins[0],
                                         screen=self._screen(0))
        answers = self._answers(self.stages[0], self.no_answer_threshold, readings, cleaned, queries, retrieved, cards,
                                retriever.index.sources)
        t2 = time.perf_counter()
        n = len(questions)
        for answer in answers:
            answer.timings = {"history": (t0 - started) / n, "retrieval": (t1 - t0) / n, "reading": (t2 - t1) / n}
        if len(self.stages) > 1:
            # The cascade: where the first reader is unsure, the second reads the same passages; its answer is given.
            redo = [i for i, a in enumerate(answers) if needs_rereading(a, self.settings.cascade_cut)]
            if redo:
                second = self.stages[1]
                # The first reader's margins on the passages it read screen them for the second.
                screen = self._screen(1, [(items[i], readings[i]) for i in redo])
                reread = self._answers(second, self.thresholds[1],
                                       self.rereader.read_many([items[i] for i in redo], self.settings.n_best,
                                                               exit_margin=self.exit_margins[1], screen=screen),
                                       *([xs[i] for i in redo] for xs in (cleaned, queries, retrieved, cards)),
                                       retriever.index.sources)
                t3 = time.perf_counter()
                for i, answer in zip(redo, reread):
                    answer.timings = {**answers[i].timings, "rereading": (t3 - t2) / len(redo)}
                    answers[i] = answer
        total = time.perf_counter() - started
        for answer in answers:
            answer.timings["total"] = total / len(answers)
        return answers

    def _answers(self, stage: Settings, threshold: float, readings: list, cleaned: list[tuple[str, list[str]]],
                 queries: list[Query], retrieved: list[list[ScoredPassage]], cards: list[list[Card]],
                 sources: dict[str, Source]) -> list[Answer]:
        """One reader's readings made answers, with their notices and the reader's name."""
        answers = []
        for (text, notices), query, passages, reading, cs in zip(cleaned, queries, retrieved, readings, cards):
            answer = build_answer(text, reading, passages, sources, no_answer_threshold=threshold,
                                  min_answer_prob=self.settings.min_answer_prob, n_best=self.settings.n_best,
                                  cards=cs)
            answer.query = query.read if query.rewritten else text
            answer.notices.extend(notices)
            if reading.question_chars is not None:
                answer.notices.append(f"The question is too long for the reader: it read only its first "
                                      f"{reading.question_chars:,} characters.")
            answer.reader = reader_name(stage.reader)
            answers.append(answer)
        return answers

    def _about_document(self, question: str, passages: list[ScoredPassage],
                        sources: dict[str, Source]) -> tuple[str, list[Card]]:
        """For a question about the document itself: the question to read and the document card to read too.

        The document is the best passage's source; "the author's ..." is read with the author's name.
        Other questions are read as they are, with no card.
        """
        if not self.settings.use_document_fields or not passages or not refers_to_document(question):
            return question, []
        source = sources[passages[0].passage.source_id]
        card = document_card(source)
        return name_the_author(question, source), [card] if card else []

    def _key_sentences(self, question: str, notices: list[str], request: Request,
                       history: Sequence | None) -> Answer:
        """A whole-document question's answer: the key sentences of the document it asks about.

        With one source, that source. With several, the source of the best passage for the question searched
        with the chat's last turn (the source the chat is about), or for the question alone; a notice says which.
        """
        started = time.perf_counter()
        index, retriever = self.index, self.retriever
        sources = index.sources
        if not sources:
            return Answer(question, None, 0.0, query=question, notices=notices, kind="key_sentences")
        notices = list(notices)
        if len(sources) == 1:
            source = next(iter(sources.values()))
        else:
            last = _as_turn(history[-1]) if history else None
            context = " ".join(x for x in (last.question, last.answer or "") if x) if last else ""
            best = retriever.search([f"{question} {context}".strip()], 1)[0]
            source = sources[best[0].passage.source_id] if best else next(iter(sources.values()))
            why = "the source this chat is about" if context else "the source of the best passage for the question"
            notices.append(f"The key sentences of “{source.title}”, {why} "
                           f"(the index holds {len(sources)} sources).")
        spans = key_sentences(self._sentences(source), request.sentences, request.kind)
        answer = key_sentence_answer(question, source, spans)
        if answer.text is None:
            notices.append(f"“{source.title}” has no sentence to choose from.")
        answer.query, answer.notices = question, notices
        seconds = time.perf_counter() - started
        answer.timings = {"key_sentences": seconds, "total": seconds}
        log.debug("%s: %d key sentences of %s in %.3f s", request.kind, len(spans), source.id, seconds)
        return answer

    def _sentences(self, source: Source) -> Sentences:
        """The source's candidate key sentences with their vectors, embedded once per source (32 kept)."""
        cached = self._sentence_cache.get(source.id)
        if cached is None:
            cached = embed_sentences(source, self.embedder.encode)
            self._sentence_cache[source.id] = cached
            while len(self._sentence_cache) > 32:
                self._sentence_cache.popitem(last=False)
        return cached

    def _query(self, question: str, history: Sequence | None) -> Query:
        if not history or not self.settings.use_history or not needs_context(question):
            return Query(question, question)
        turns = [_as_turn(h) for h in history]
        last = turns[-1]
        if last.answer is None and last.question:
            last = Turn(last.question, self._earlier_answer(last.question, turns[:-1]))
        return rewrite(question, turns[:-1] + [last])

    def _earlier_answer(self, question: str, turns: list[Turn]) -> str | None:
        """The answer this assistant gives to an earlier question of the chat, or its best guess when it
        abstained (:func:`qa.answer.best_guess`; cached)."""
        key = (question, tuple(turns))
        if key not in self._history_cache:
            try:
                self._history_cache[key] = best_guess(self.ask(question, turns or None))
            except QuestionError:
                self._history_cache[key] = None
            while len(self._history_cache) > 256:
                self._history_cache.popitem(last=False)
        return self._history_cache[key]

    # -- sources --------------------------------------------------------------------------------

    def sources(self) -> list[Source]:
        """The indexed sources, in the order they were added."""
        return list(self.index.sources.values())

    def source(self, source_id: str) -> Source:
        """One source by id.

        Raises:
            KeyError: no such source.
        """
        return self.index.sources[source_id]

    def add_sources(self, refs: Iterable[str | Path], *, replace: bool = False, glob: str = "**/*",
                    allow_private: bool = False, progress: bool = False, origins: dict[str, str] | None = None,
                    check=None):
        """Read files, folders or URLs and add them to the index (or replace it), saving atomically.

        Args:
            refs: paths or URLs.
            replace: build a new index from ``refs`` alone instead of adding to the current one.
            glob: which files of a folder to read.
            allow_private: allow URLs on private or loopback addresses.
            progress: show a progress bar.
            origins: the origin to record instead of a ref's own (an upload's file name, not its temporary path).
            check: called with the new index before it is saved; what it raises leaves everything unchanged.
        Returns:
            The :class:`qa.sources.LoadReport` of what was read and skipped, with ``changes`` set.
        """
        from qa.sources import load_sources

        report = load_sources(list(refs), glob=glob, allow_private=allow_private)
        if origins:
            report.sources = [dataclasses.replace(s, origin=origins.get(s.origin, s.origin)) for s in report.sources]
            report.skipped = [dataclasses.replace(s, origin=origins.get(s.origin, s.origin)) for s in report.skipped]
        with self._write_lock:
            if replace:
                new = building.build(report.sources, self.embedder, self.settings.chunk_tokens,
                                     self.settings.chunk_overlap_tokens, progress=progress)
                changes = {"added": [s.origin for s in new.sources.values()], "unchanged": [], "replaced": []}
            else:
                new, changes = building.add(self.index, report.sources, self.embedder, progress=progress)
            if new is not self.index:  # else nothing changed: the saved index stays byte-for-byte as it was
                if check is not None:
                    check(new)
                if self.index.path is not None:
                    index_store.save(new, self.index.path)
                self._set_index(new)
        report.changes = changes
        return report

    def remove_source(self, source_id: str) -> None:
        """Remove a source, its passages and vectors, and save the index.

        Raises:
            KeyError: no such source.
        """
        if source_id not in self.index.sources:
            raise KeyError(f"no source with id {source_id!r}; `qa index list` shows the ids")
        with self._write_lock:
            new = building.remove(self.index, {source_id})
            if self.index.path is not None:
                index_store.save(new, self.index.path)
            self._set_index(new)

    def reload(self) -> bool:
        """Pick up an index rebuilt on disk by another process; True when it changed."""
        if self.index.path is None:
            return False
        fresh = index_store.load(self.index.path, embedder=self.settings.embedder, dimension=self.embedder.dimension)
        if fresh.manifest.get("files") == self.index.manifest.get("files"):
            return False
        with self._write_lock:
            self._set_index(fresh)
        return True

    def info(self) -> dict:
        """Models, sources, passage count and index location."""
        return {
            "index": str(self.index.path) if self.index.path else None,
            "embedder": self.settings.embedder,
            "reader": reader_name(self.settings.reader),
            "reader_label": reader_label(self.settings.reader),
            "reader_version": " + ".join(str(reader_card(s.reader_path()).get("version")) for s in self.stages)
            if len(self.stages) > 1 else reader_card(self.settings.reader_path()).get("version"),
            "reader_path": self.settings.reader_path(),
            "no_answer_threshold": self.settings.abstention_threshold(),
            "early_exit_margin": self.exit_margins[0],
            **({"screening": {"reader": self.screeners[0], "margin": self.screen_margins[0]}}
               if self.screen_margins[0] is not None else {}),
            **({"cascade": {"readers": [reader_name(s.reader) for s in self.stages],
                            "paths": [s.reader_path() for s in self.stages],
                            "no_answer_thresholds": self.thresholds,
                            "early_exit_margins": self.exit_margins,
                            "screeners": self.screeners,
                            "screen_margins": self.screen_margins,
                            "cut": self.settings.cascade_cut}} if len(self.stages) > 1 else {}),
            "retrieval": self.settings.retrieval,
            "passages": len(self.index),
            "sources": [{**s.meta(), "passages": n} for s, n in
                        zip(self.index.sources.values(), self.index.passage_counts().values())],
            "built": self.index.manifest.get("built"),
        }


def _as_turn(item: str | Turn | dict | tuple) -> Turn:
    if isinstance(item, Turn):
        return item
    if isinstance(item, str):
        return Turn(item)
    if isinstance(item, dict):
        return Turn(str(item.get("question", "")), item.get("answer"))
    if isinstance(item, (tuple, list)) and item:
        return Turn(str(item[0]), item[1] if len(item) > 1 else None)
    raise QuestionError(f"cannot read a history item of type {type(item).__name__}")
