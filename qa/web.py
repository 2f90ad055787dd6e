"""The web chat: a Gradio app over one shared :class:`~qa.assistant.Assistant`.

Three tabs:

* **Chat** — ask questions; each reply shows the answer span, its confidence, a numbered citation
  quoting the source with the span highlighted, the character offsets, and the other candidates in a
  collapsible section. Follow-up questions are sent with this session's earlier questions and answers.
  A question about the whole article ("Summarize the article", "What is the author's main argument?") is
  answered with the article's key sentences, each a numbered citation highlighted in its place.
* **Sources** — the full text of an indexed source, with every span cited in this session highlighted.
* **Index** — for editors: add uploaded files or URLs to the index, remove a source, or reload an index rebuilt
  on disk. Who is an editor, and the limits on uploads and on the index, are :mod:`qa.access`'s rules: by
  default only requests from this machine, and only while the app listens on a loopback address; on any other
  address the tab and its endpoints are not built unless editors are configured (a token or logins). Every
  write handler checks the rule itself, whichever endpoint or event calls it.

There is also a named API endpoint, ``/ask`` (``gradio_client.Client(url).predict(question,
api_name="/ask")``), that returns the JSON of :meth:`qa.types.Answer.to_dict`.

Models and index are loaded once per process and shared by every browser session; each session keeps
its own chat in a ``gr.State``. Every piece of text that comes from a source, a question or a file name
is escaped with :func:`html.escape` before it is put into HTML, and the chatbot renders the HTML built
here without Markdown, through Gradio's sanitizer as a second line of defence.
"""

from __future__ import annotations

import dataclasses
import html
import json
import logging
import os
import time
import unicodedata
from pathlib import Path
from typing import Any, Iterable, Sequence

import gradio as gr

from qa import memory
from qa.access import Access, EditRefused, LimitError, Limits, format_size
from qa.assistant import Assistant, QuestionError
from qa.config import Settings
from qa.readers import reader_label
from qa.sources import EXTENSIONS
from qa.types import Answer, Citation, Source

log = logging.getLogger(__name__)

EXAMPLES = [
    "Who is the commander of the Quds Force?",
    "Who does he report to?",
    "Summarize the article",
    "What is the capital of France?",
]
CLOSEST_PASSAGES = 2
PASSAGE_PREVIEW_CHARS = 500
CONCURRENCY = 2  # the machine this ships on has 2 cores; the reader serialises its forward passes anyway
MAX_QUEUE = 64
UPLOAD_CACHE = (1800, 3600)  # Gradio deletes uploaded temp files older than an hour, every half hour
MAX_SHOWN_QUESTION = 2000  # a longer question is shown cut (the engine reads at most max_question_chars anyway)

CSS = """
.qa-answer p { margin: 0 0 .4em 0; }
.qa-answer .qa-text { font-size: 1.05em; }
.qa-conf { color: var(--body-text-color-subdued); font-size: .9em; margin-left: .4em; }
.qa-ref { font-size: .8em; vertical-align: super; margin-left: .15em; }
.qa-cite { border-left: 3px solid var(--color-accent); margin: .4em 0; padding: .2em .7em; white-space: pre-wrap; }
.qa-meta { color: var(--body-text-color-subdued); font-size: .85em; }
.qa-notice { color: var(--body-text-color-subdued); font-style: italic; }
.qa-error { color: var(--error-text-color, #b91c1c); }
mark.qa-mark.qa-focus { outline: 2px solid #f59e0b; }
mark.qa-mark { background: #fde68a; color: #111827; padding: 0 .1em; border-radius: 2px; }
.qa-cand li, .qa-passages li { margin-bottom: .3em; }
.qa-source-text { position: relative; white-space: pre-wrap; line-height: 1.6; max-height: 70vh; overflow-y: auto;
                  padding: .6em; border: 1px solid var(--border-color-primary); border-radius: 6px; }
.qa-report td, .qa-report th { padding: .15em .6em; text-align: left; vertical-align: top; }
#qa-send, #qa-clear { white-space: nowrap; min-width: max-content !important; }
"""

# Scroll the source text to the span cited last (or the first one) when it changes or becomes visible.
SCROLL_TO_MARK_JS = """
const go = () => {
  const box = element.querySelector('.qa-source-text');
  if (!box || !box.clientHeight) return;
  const mark = box.querySelector('mark.qa-focus') || box.querySelector('mark');
  if (mark) box.scrollTop = Math.max(0, mark.offsetTop - box.clientHeight / 3);
};
new ResizeObserver(go).observe(element);
watch('value', go);
go();
"""


# --------------------------------------------------------------------------------------------------
# Rendering (pure functions: text in, escaped HTML out)


def esc(text: object) -> str:
    """``html.escape`` of ``str(text)``, quotes included (safe in text and in attribute values)."""
    return html.escape(str(text), quote=True)


def _merge(spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, list[str]]]:
    """Sort spans and merge overlapping ones, keeping every label."""
    merged: list[tuple[int, int, list[str]]] = []
    for start, end, label in sorted(spans, key=lambda s: (s[0], s[1])):
        if end <= start:
            continue
        if merged and start < merged[-1][1]:
            s, e, labels = merged[-1]
            merged[-1] = (s, max(e, end), labels + ([label] if label and label not in labels else []))
        else:
            merged.append((start, end, [label] if label else []))
    return merged


def highlight(text: str, spans: Iterable[tuple[int, int] | tuple[int, int, str]], *, offset: int = 0,
              tag_labels: bool = False, focus: int | None = None) -> str:
    """Escape ``text`` and wrap each span in ``<mark class="qa-mark">``.

    Args:
        text: plain text (a source, or a slice of one).
        spans: ``(start, end)`` or ``(start, end, label)`` character offsets; overlapping spans are merged,
            spans outside the text are clipped.
        offset: where ``text`` starts in the offsets' frame (for a slice of a source, the slice start).
        tag_labels: also put the labels after each mark, as a small superscript.
        focus: an offset (same frame as ``spans``): the mark that covers it also gets the class ``qa-focus``.
    Returns:
        HTML in which only the ``<mark>`` (and ``<sup>``) tags are markup.
    """
    clipped = []
    for span in spans:
        start, end = span[0] - offset, span[1] - offset
        label = span[2] if len(span) > 2 else ""  # type: ignore[misc]
        start, end = max(0, start), min(len(text), end)
        if start < end:
            clipped.append((start, end, label))
    out, pos = [], 0
    for start, end, labels in _merge(clipped):
        out.append(esc(text[pos:start]))
        title = f' title="{esc("; ".join(labels))}"' if labels else ""
        focused = " qa-focus" if focus is not None and start <= focus - offset < end else ""
        out.append(f'<mark class="qa-mark{focused}"{title}>{esc(text[start:end])}</mark>')
        if tag_labels and labels:
            out.append(f'<sup class="qa-ref">{esc(", ".join(label.split(":")[0] for label in labels))}</sup>')
        pos = end
    out.append(esc(text[pos:]))
    return "".join(out)


def render_question(question: str) -> str:
    """A user message: the question as text (no control characters; cut after ``MAX_SHOWN_QUESTION``)."""
    text = "".join(ch for ch in str(question) if ch in "\n\t" or not unicodedata.category(ch).startswith("C"))
    if len(text) > MAX_SHOWN_QUESTION:
        text = text[:MAX_SHOWN_QUESTION] + "…"
    return f'<span class="qa-question">{esc(text)}</span>'


def render_error(message: str) -> str:
    """An assistant message that reports a failure."""
    return f'<div class="qa-answer qa-error"><p>⚠️ {esc(message)}</p></div>'


def render_pending() -> str:
    return '<div class="qa-answer qa-pending"><p class="qa-notice">Reading the article…</p></div>'


def render_citation(citation: Citation, number: int = 1) -> str:
    """The quoted sentence(s) with the answer span highlighted, the title and the offsets."""
    quote = highlight(citation.quote, [(citation.start, citation.end)], offset=citation.quote_start)
    return (f'<blockquote class="qa-cite">[{number}] “{quote}”</blockquote>'
            f'<p class="qa-meta">[{number}] {esc(citation.title)} — characters {citation.start}–{citation.end}'
            f' <span title="{esc(citation.origin)}">({esc(_short_origin(citation.origin))})</span></p>')


def _short_origin(origin: str) -> str:
    if origin.startswith(("http://", "https://")):
        return origin
    return Path(origin).name or origin


def render_key_sentences(answer: Answer) -> str:
    """A whole-document answer: the source's title, then each key sentence highlighted, numbered, with its offsets."""
    n = len(answer.citations)
    head = (f'<p><strong class="qa-text">Key sentences of “{esc(answer.citations[0].title)}”</strong>'
            f'<span class="qa-conf">{n} sentence{"s" if n != 1 else ""}, in the order of the text</span></p>')
    return head + "".join(render_citation(c, number) for number, c in enumerate(answer.citations, start=1))


def render_candidates(answer: Answer) -> str:
    """Other candidate answers with their probabilities, in a collapsed ``<details>``."""
    candidates = list(answer.candidates)
    if answer.text is not None and candidates:
        candidates = candidates[1:]  # the first candidate is the answer itself
    if not candidates:
        return ""
    title = "Other candidate answers" if answer.text is not None else "Spans considered (below the answer threshold)"
    items = "".join(
        f"<li><strong>{esc(c.text)}</strong> <span class=\"qa-conf\">{c.probability:.0%}</span>"
        f" <span class=\"qa-meta\">{esc(c.citation.title)}, characters {c.citation.start}–{c.citation.end}</span></li>"
        for c in candidates)
    return f'<details class="qa-cand"><summary>{title} ({len(candidates)})</summary><ol>{items}</ol></details>'


def render_answer(answer: Answer, sources: dict[str, Source] | None = None) -> str:
    """The assistant message for an :class:`~qa.types.Answer` (escaped HTML).

    An answer shows the span, its confidence, citation [1] with the highlighted quote, title and
    offsets, and the other candidates. An answer to a question about the whole document shows each key
    sentence as a numbered citation. An abstention says the article does not answer and shows the
    closest passages.
    """
    parts = ['<div class="qa-answer">']
    if answer.kind == "key_sentences" and answer.citations:
        parts.append(render_key_sentences(answer))
    elif answer.text is not None:
        parts.append(f'<p><strong class="qa-text">{esc(answer.text)}</strong>'
                     f'<span class="qa-ref">[1]</span>'
                     f'<span class="qa-conf">confidence {answer.score:.0%}</span></p>')
        for number, citation in enumerate(answer.citations[:1], start=1):
            parts.append(render_citation(citation, number))
    else:
        parts.append('<p><strong>The article does not answer this question.</strong></p>')
        if answer.passages:
            items = []
            for scored in answer.passages[:CLOSEST_PASSAGES]:
                p = scored.passage
                title = sources[p.source_id].title if sources and p.source_id in sources else p.source_id
                text = p.text if len(p.text) <= PASSAGE_PREVIEW_CHARS else p.text[:PASSAGE_PREVIEW_CHARS] + "…"
                items.append(f'<li><blockquote class="qa-cite">{esc(text)}</blockquote>'
                             f'<p class="qa-meta">{esc(title)} — characters {p.start}–{p.end}</p></li>')
            parts.append(f'<p>The closest passages:</p><ol class="qa-passages">{"".join(items)}</ol>')
    parts.append(render_candidates(answer))
    for notice in answer.notices:
        parts.append(f'<p class="qa-notice">Note: {esc(notice)}</p>')
    if answer.query and answer.query != answer.question:
        parts.append(f'<p class="qa-meta">Read as: “{esc(answer.query)}”</p>')
    total = answer.timings.get("total")
    reread = f" (reread by {answer.reader}: the fast reader was unsure)" if "rereading" in answer.timings else ""
    if total is not None:
        parts.append(f'<p class="qa-meta">Answered in {total:.2f} s{esc(reread)}</p>')
    parts.append("</div>")
    return "".join(parts)


def render_source(source: Source | None, spans: Iterable[tuple[int, int, str]] = (), focus: int | None = None) -> str:
    """The full text of a source with the given spans highlighted in place (the one at ``focus`` marked ``qa-focus``)."""
    if source is None:
        return '<p class="qa-meta">No source is indexed yet: add one in the Index tab.</p>'
    spans = list(spans)
    meta = [esc(source.origin)]
    if source.date:
        meta.append(esc(source.date))
    meta.append(f"{len(source.text):,} characters")
    meta.append(f"{len(spans)} span{'s' if len(spans) != 1 else ''} cited in this chat" if spans
                else "nothing cited from it in this chat yet")
    return (f'<div class="qa-source"><h3>{esc(source.title)}</h3><p class="qa-meta">{" · ".join(meta)}</p>'
            f'<div class="qa-source-text">{highlight(source.text, spans, tag_labels=True, focus=focus)}</div></div>')


def render_report(report: Any, labels: dict[str, str] | None = None) -> str:
    """What ``add_sources`` did: one row per added, replaced or unchanged origin, then the skipped ones."""
    labels = labels or {}
    rows = []
    changes = getattr(report, "changes", {}) or {}
    for kind in ("added", "replaced", "unchanged"):
        for origin in changes.get(kind, []):
            rows.append(f"<tr><td>{kind}</td><td>{esc(labels.get(origin, origin))}</td><td></td></tr>")
    for item in getattr(report, "skipped", []):
        rows.append(f"<tr><td>skipped</td><td>{esc(labels.get(item.origin, item.origin))}</td>"
                    f"<td>{esc(item.reason)}</td></tr>")
    if not rows:
        return '<p class="qa-meta">Nothing was read.</p>'
    return ('<table class="qa-report"><thead><tr><th>result</th><th>source</th><th>reason</th></tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def _hide_paths(text: str, labels: dict[str, str]) -> str:
    """``text`` with each uploaded file's temporary path replaced by the file's name."""
    for path in sorted(labels, key=len, reverse=True):
        text = text.replace(path, labels[path])
    return text


def describe_limits(limits: Limits) -> str:
    """The limits, in a sentence for the Index tab."""
    return (f"At most {limits.max_sources_per_request} files and URLs per request and "
            f"{format_size(limits.max_upload_bytes)} per file; the index holds at most "
            f"{limits.max_index_sources:,} sources, {limits.max_index_passages:,} passages and "
            f"{format_size(limits.max_index_bytes)} on disk.")


def parse_history(history: object) -> list[str | dict]:
    """The ``history`` argument of the API: a list (or a JSON list) of questions or question/answer dicts."""
    if history is None or history == "":
        return []
    if isinstance(history, str):
        try:
            history = json.loads(history)
        except json.JSONDecodeError:
            history = [history]  # a single earlier question given as plain text
    if not isinstance(history, list):
        raise QuestionError("history must be a list of earlier questions, oldest first")
    out: list[str | dict] = []
    for item in history:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict) and isinstance(item.get("question"), str):
            answer = item.get("answer")
            out.append({"question": item["question"], "answer": answer if isinstance(answer, str) else None})
        else:
            raise QuestionError("each history item must be an earlier question (text) or "
                                '{"question": ..., "answer": ...}')
    return out


# --------------------------------------------------------------------------------------------------
# The app


class WebChat:
    """The handlers behind the page, over one shared assistant (usable without a browser in tests).

    A session's chat is a list of turns (dicts): ``question``, ``answer`` (text or None), ``html``
    (the rendered reply), ``spans`` (``[source_id, start, end]`` of each citation: the answer, or every key
    sentence of a whole-document answer) and ``error``.

    ``access`` decides who may change the index (default: open to in-process calls and to requests straight
    from this machine); ``limits`` bound what a write may bring in (default: :class:`qa.access.Limits`).
    """

    def __init__(self, assistant: Assistant, access: Access | None = None, limits: Limits | None = None) -> None:
        self.assistant = assistant
        self.access = access or Access()
        self.limits = limits or Limits()

    def authorize(self, action: str, token: str | None, request: gr.Request | None) -> str:
        """Allow a write to the index, or raise :class:`gradio.Error` saying why not (nothing is changed).

        Returns:
            Who writes ("local", "token" or a user name), for the log.
        """
        try:
            who = self.access.check(token, request)
        except EditRefused as exc:
            client = getattr(getattr(request, "client", None), "host", None) if request is not None else None
            log.warning("refused to %s (client %s, user %s): %s", action, client,
                        getattr(request, "username", None), exc)
            raise gr.Error(esc(exc), title="Not allowed", print_exception=False) from None
        log.info("%s: %s", who, action)
        return who

    # -- chat -----------------------------------------------------------------------------------

    @staticmethod
    def history(turns: Sequence[dict]) -> list[dict]:
        """The engine's history for these turns: earlier questions with the answers given."""
        return [{"question": t["question"], "answer": t.get("answer")} for t in turns if not t.get("error")]

    @staticmethod
    def messages(turns: Sequence[dict], pending: str | None = None) -> list[dict]:
        """The Chatbot value (messages format) for these turns, plus a pending question."""
        out: list[dict] = []
        for t in turns:
            out.append({"role": "user", "content": render_question(t["question"])})
            out.append({"role": "assistant", "content": t["html"]})
        if pending is not None:
            out.append({"role": "user", "content": render_question(pending)})
            out.append({"role": "assistant", "content": render_pending()})
        return out

    def answer_turn(self, question: str, turns: Sequence[dict]) -> dict:
        """Ask ``question`` with the history of ``turns``; a failure becomes an error turn, never an exception."""
        try:
            answer = self.assistant.ask(question, history=self.history(turns) or None)
        except QuestionError as exc:
            return {"question": question, "answer": None, "html": render_error(str(exc)), "spans": [], "error": True}
        except Exception as exc:  # noqa: BLE001 - shown in the chat instead of breaking the page
            log.exception("answering %r failed", question)
            return {"question": question, "answer": None, "spans": [], "error": True,
                    "html": render_error(f"Sorry, something went wrong while answering ({type(exc).__name__}: "
                                         f"{exc}). Try again, or ask another question.")}
        spans = [[c.source_id, c.start, c.end] for c in answer.citations]
        # The question as the engine read it (control characters removed, a huge one truncated).
        return {"question": answer.question, "answer": answer.text,
                "html": render_answer(answer, self.assistant.index.sources),
                "spans": spans, "error": False}

    def chat(self, question: str, turns: list[dict] | None, selected: str | None):
        """Submit handler (a generator): show the question at once, then the reply.

        Yields:
            (textbox, chatbot, turns, source dropdown, source html)
        """
        turns = list(turns or [])
        question = question or ""
        if not question.strip():
            gr.Warning("Type a question about the article first.")
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        yield "", self.messages(turns, pending=question), gr.skip(), gr.skip(), gr.skip()
        turn = self.answer_turn(question, turns)
        turns.append(turn)
        shown = turn["spans"][0][0] if turn["spans"] else selected
        yield "", self.messages(turns), turns, gr.update(value=shown), self.source_html(shown, turns)

    def clear(self, selected: str | None):
        """Clear button: empty chat, no highlights."""
        return "", [], [], self.source_html(selected, [])

    # -- sources --------------------------------------------------------------------------------

    def source_choices(self) -> list[tuple[str, str]]:
        return [(f"{s.title} ({len(s.text):,} characters)", s.id) for s in self.assistant.sources()]

    def source_html(self, source_id: str | None, turns: Sequence[dict] | None) -> str:
        sources = self.assistant.index.sources
        if source_id not in sources:
            source_id = next(iter(sources), None)
        source = sources.get(source_id) if source_id else None
        spans, focus = [], None
        for n, turn in enumerate(turns or [], start=1):
            first = True
            for sid, start, end in turn.get("spans", []):
                if sid == source_id:
                    spans.append((start, end, f"Q{n}: {turn['question']}"))
                    if first:
                        focus, first = start, False  # the latest turn's first cited span
        return render_source(source, spans, focus)

    def refresh_sources(self, selected: str | None, turns: list[dict] | None):
        """Page load and tab select: current list of sources and the selected one's text."""
        choices = self.source_choices()
        ids = [value for _, value in choices]
        if selected not in ids:
            selected = ids[0] if ids else None
        return gr.update(choices=choices, value=selected), self.source_html(selected, turns), self.status()

    # -- index ----------------------------------------------------------------------------------

    def status(self) -> str:
        index = self.assistant.index
        n = len(index.sources)
        reader = reader_label(self.assistant.settings.reader)
        return (f'<p class="qa-meta">{n} source{"s" if n != 1 else ""}, {len(index)} passages'
                f'{" — index at " + esc(index.path) if index.path else ""}; reader {esc(reader)}</p>')

    def add(self, files: Sequence[Any] | None, urls: str | None, selected: str | None, turns: list[dict] | None,
            token: str | None = None, request: gr.Request | None = None,
            progress: gr.Progress = gr.Progress(track_tqdm=True)):  # noqa: B008 - Gradio's way to ask for it
        """Add uploaded files and URLs to the index, showing progress (reading, then the encoding's bar).

        Editors only (:meth:`authorize`), within the limits: sources per request, size per upload, and the
        index's sources, passages and bytes on disk, checked before anything is read and again on the new
        index before it is saved. An upload is recorded and cited under its file name, never its temporary path.
        The chat keeps answering from the current index meanwhile; the new one replaces it when it is saved.

        Returns:
            (report html, file input, url input, source dropdown, source html, status)
        Raises:
            gradio.Error: this request may not change the index.
        """
        self.authorize("add sources", token, request)
        paths = [str(Path(str(getattr(f, "name", f)))) for f in (files or [])]
        labels = {p: Path(p).name for p in paths}  # uploads live in a temp folder: record and show their names
        refs = paths + [u for u in (urls or "").split() if u]
        if not refs:
            gr.Warning("Choose files or paste a URL first.")
            return (gr.skip(),) * 6
        from qa.errors import USER_ERRORS

        def refused(message: object) -> tuple:
            return (render_error(f"Nothing was added: {_hide_paths(str(message), labels)}"),) + (gr.skip(),) * 5

        started = time.perf_counter()
        try:
            self.limits.check_request(refs, paths, labels)
            self.limits.check_index(self.assistant.index)
            # Private and loopback URLs only where the operator allowed them (QA_ALLOW_PRIVATE_URLS=1).
            allow_private = bool(getattr(getattr(self.assistant, "settings", None), "allow_private_urls", False))
            progress(0, desc=f"Reading {len(refs)} source{'s' if len(refs) != 1 else ''}…")
            report = self.assistant.add_sources(refs, allow_private=allow_private, progress=True, origins=labels,
                                                check=lambda new: self.limits.check_index(new, new=True))
        except LimitError as exc:
            log.warning("refused an add over a limit: %s", exc)
            return refused(exc)
        except USER_ERRORS as exc:
            return refused(exc)
        except Exception as exc:  # noqa: BLE001
            log.exception("adding %s failed", refs)
            return refused(f"{type(exc).__name__}: {exc}")
        # A reason may quote a temporary path.
        report.skipped = [dataclasses.replace(k, reason=_hide_paths(k.reason, labels)) for k in report.skipped]
        seconds = time.perf_counter() - started
        changed = report.changes.get("added", []) + report.changes.get("replaced", [])
        summary = (f'<p>{len(changed)} source{"s" if len(changed) != 1 else ""} added or replaced, '
                   f'{len(report.skipped)} skipped ({seconds:.1f} s). The chat now answers from the new index.</p>')
        new_selected = next((s.id for s in self.assistant.sources() if s.origin in changed), selected)
        dropdown, source, status = self.refresh_sources(new_selected, turns)
        return summary + render_report(report, labels), None, "", dropdown, source, status

    def remove(self, source_id: str | None, selected: str | None, turns: list[dict] | None,
               token: str | None = None, request: gr.Request | None = None):
        """Remove button (editors only): drop a source, its passages and vectors, and save the index.

        Returns:
            (message, source dropdown, source html, status)
        Raises:
            gradio.Error: this request may not change the index.
        """
        self.authorize("remove a source", token, request)
        sources = self.assistant.index.sources
        if not source_id or source_id not in sources:
            return (render_error("Nothing was removed: choose one of the indexed sources first."),
                    gr.skip(), gr.skip(), gr.skip())
        title = sources[source_id].title
        try:
            self.assistant.remove_source(source_id)
        except Exception as exc:  # noqa: BLE001 - the old index stays in use
            log.exception("removing %s failed", source_id)
            return (render_error(f"Nothing was removed: {exc}"), gr.skip(), gr.skip(), gr.skip())
        message = f"<p>Removed “{esc(title)}”. The chat now answers from the new index.</p>"
        return (message, *self.refresh_sources(None if selected == source_id else selected, turns))

    def reload(self, selected: str | None, turns: list[dict] | None, token: str | None = None,
               request: gr.Request | None = None):
        """Reload button (editors only): pick up an index rebuilt on disk.

        Returns:
            (message, dropdown, source html, status)
        Raises:
            gradio.Error: this request may not change the index.
        """
        self.authorize("reload the index", token, request)
        try:
            changed = self.assistant.reload()
        except Exception as exc:  # noqa: BLE001 - the old index stays in use
            log.exception("reloading the index failed")
            return (render_error(f"The index could not be reloaded; the previous one is still in use: {exc}"),
                    gr.skip(), gr.skip(), gr.skip())
        message = ("<p>Reloaded: the chat now answers from the index on disk.</p>" if changed
                   else "<p>The index on disk has not changed.</p>")
        return (message, *self.refresh_sources(selected, turns))

    # -- API ------------------------------------------------------------------------------------

    def api_ask(self, question: str, history: list[str] | None = None) -> dict:
        """Answer a question about the indexed article.

        Args:
            question: the question.
            history: earlier questions of the conversation, oldest first (a list, or a JSON list; items may
                also be {"question": ..., "answer": ...}).
        Returns:
            The answer as JSON: answer (null when the article does not answer), score, citations with
            character offsets into the source text, candidates, passages, query, notices.
        """
        try:
            turns = parse_history(history)
            return self.assistant.ask(question, history=turns or None).to_dict()
        except QuestionError as exc:
            raise gr.Error(str(exc)) from None
        except gr.Error:
            raise
        except Exception as exc:  # noqa: BLE001
            log.exception("API ask %r failed", question)
            raise gr.Error(f"the assistant could not answer ({type(exc).__name__}); see the server log") from None


def build_app(assistant: Assistant, access: Access | None = None, limits: Limits | None = None) -> gr.Blocks:
    """The Gradio app over ``assistant`` (shared by every session). Queue set up; not launched.

    Args:
        assistant: the loaded assistant.
        access: who may change the index (default: requests straight from this machine, the rule for a loopback
            address; :func:`launch` derives it from the address and the environment). When it allows no editing,
            the Index tab and its endpoints are not built at all.
        limits: the limits on uploads and on the index (default: :class:`qa.access.Limits`).
    Returns:
        The app; ``demo.qa_launch_options`` holds what :meth:`gradio.Blocks.launch` must be given for these
        rules (``max_file_size``, and ``auth`` when there are logins).
    """
    access = access or Access()
    limits = limits or Limits()
    chat = WebChat(assistant, access, limits)
    sources = assistant.sources()
    first = sources[0].id if sources else None
    private = dict(api_visibility="undocumented")
    hidden = dict(api_visibility="private")

    with gr.Blocks(title="Article QA", analytics_enabled=False, delete_cache=UPLOAD_CACHE) as demo:
        gr.HTML(f"<style>{CSS}</style>", padding=False, container=False, js_on_load=None)
        gr.Markdown("## Ask the article\nAnswers are exact spans of the indexed text, with a citation and the "
                    "span highlighted. Follow-up questions (“Who does he report to?”) use the chat so far; "
                    "“Summarize the article” gives its key sentences, each cited.")
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"):
                chatbot = gr.Chatbot(
                    label="Chat", height=520, render_markdown=False, sanitize_html=True, allow_tags=False,
                    latex_delimiters=[], feedback_options=None, buttons=["copy"], elem_id="qa-chatbot",
                    placeholder="Ask a question about the article; the answer is quoted from it.")
                with gr.Row():
                    question = gr.Textbox(placeholder="Ask a question about the article…", show_label=False,
                                          lines=1, max_lines=4, scale=8, autofocus=True, elem_id="qa-question",
                                          submit_btn=False)
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=80, elem_id="qa-send")
                    clear = gr.Button("Clear chat", scale=1, min_width=80, elem_id="qa-clear")
                gr.Examples(examples=[[q] for q in EXAMPLES], inputs=[question], label="Example questions")
            with gr.Tab("Sources", id="sources") as sources_tab:
                source_pick = gr.Dropdown(choices=chat.source_choices(), value=first, label="Source",
                                          interactive=True, elem_id="qa-source-pick")
                source_view = gr.HTML(chat.source_html(first, []), elem_id="qa-source-view",
                                      js_on_load=SCROLL_TO_MARK_JS)
            if access.editing:
                # Shown to whoever may edit; with editor logins only, to editors once the page has loaded.
                with gr.Tab("Index", id="index", visible=access.mode != "editors" or access.needs_token_box,
                            elem_id="qa-index-tab") as index_tab:
                    status = gr.HTML(chat.status(), js_on_load=None)
                    tokens = []
                    if access.needs_token_box:
                        tokens = [gr.Textbox(label="Editor token", type="password", lines=1, max_lines=1,
                                             placeholder="needed to change the index", elem_id="qa-edit-token")]
                    with gr.Row():
                        files = gr.File(label=f"Files to add ({', '.join(sorted(EXTENSIONS))})",
                                        file_count="multiple", type="filepath", file_types=sorted(EXTENSIONS),
                                        elem_id="qa-files")
                        urls = gr.Textbox(label="Web page URLs (one per line)", lines=3,
                                          placeholder="https://example.com/news/article.html", elem_id="qa-urls")
                    with gr.Row():
                        add = gr.Button("Add to the index", variant="primary", elem_id="qa-add")
                        reload = gr.Button("Reload index from disk", elem_id="qa-reload")
                    with gr.Row():
                        # Any value reaches the handler, which checks it: a source added after the page was built
                        # is removable through the API too.
                        remove_pick = gr.Dropdown(choices=chat.source_choices(), value=None, label="Source to remove",
                                                  interactive=True, allow_custom_value=True, scale=3,
                                                  elem_id="qa-remove-pick")
                        remove = gr.Button("Remove from the index", variant="stop", scale=1, elem_id="qa-remove")
                    report = gr.HTML(js_on_load=None, elem_id="qa-index-report")
                    gr.Markdown(describe_limits(limits), elem_classes=["qa-meta"])

        chat_outputs = [question, chatbot, turns, source_pick, source_view]
        for trigger in (question.submit, send.click):
            trigger(chat.chat, [question, turns, source_pick], chat_outputs, show_progress="hidden",
                    concurrency_id="answer", api_name="chat", **private)
        clear.click(chat.clear, [source_pick], [question, chatbot, turns, source_view], queue=False,
                    api_name="clear", **private)
        # The chatbot's own trash icon empties the messages: forget the turns too.
        chatbot.clear(chat.clear, [source_pick], [question, chatbot, turns, source_view], queue=False,
                      api_name="clear_chatbot", **private)
        source_pick.input(chat.source_html, [source_pick, turns], [source_view], queue=False,
                          api_name="show_source", **private)
        if not access.editing:  # read-only: no Index tab, no write endpoint (documented or not)
            def refresh(selected, turns):
                return chat.refresh_sources(selected, turns)[:2]

            sources_tab.select(refresh, [source_pick, turns], [source_pick, source_view], queue=False,
                               api_name="refresh_sources", **private)
            demo.load(refresh, [source_pick, turns], [source_pick, source_view], queue=False, api_name="load",
                      **private)
        else:
            def removable():
                return gr.update(choices=chat.source_choices(), value=None)

            def on_load(selected, turns, request: gr.Request):
                return (*chat.refresh_sources(selected, turns), removable(),
                        gr.update(visible=access.offers_editing_to(request)))

            source_outputs = [source_pick, source_view, status]
            sources_tab.select(chat.refresh_sources, [source_pick, turns], source_outputs,
                               queue=False, api_name="refresh_sources", **private)
            demo.load(on_load, [source_pick, turns], [*source_outputs, remove_pick, index_tab], queue=False,
                      api_name="load", **private)
            # Each write handler checks access itself (chat.authorize): whoever calls the endpoint, however.
            write = dict(concurrency_limit=1, concurrency_id="index-write", **private)
            add.click(chat.add, [files, urls, source_pick, turns, *tokens],
                      [report, files, urls, *source_outputs], api_name="add_sources", **write
                      ).then(removable, None, [remove_pick], queue=False, api_name="removable", **hidden)
            remove.click(chat.remove, [remove_pick, source_pick, turns, *tokens], [report, *source_outputs],
                         api_name="remove_source", **write
                         ).then(removable, None, [remove_pick], queue=False, api_name="removable_after", **hidden)
            reload.click(chat.reload, [source_pick, turns, *tokens], [report, *source_outputs],
                         api_name="reload", **write
                         ).then(removable, None, [remove_pick], queue=False, api_name="removable_reload", **hidden)
        def ask(question, history=None):
            return chat.api_ask(question, history)

        # Real types (this module's annotations are strings), so the API page and clients see them.
        ask.__annotations__ = {"question": str, "history": list[str] | None, "return": dict}
        ask.__doc__ = WebChat.api_ask.__doc__
        gr.api(ask, api_name="ask", concurrency_id="answer")  # chat and API share the CONCURRENCY slots

    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=MAX_QUEUE)
    demo.qa_chat = chat  # type: ignore[attr-defined]  # the handlers, for tests
    # Read-only: no component takes files, so Gradio's upload route takes none either (1 byte at most).
    options: dict[str, Any] = {"max_file_size": limits.max_upload_bytes if access.editing else 1}
    if access.logins:
        options["auth"] = access.launch_auth()
        options["auth_message"] = "Log in to ask about the article."
    demo.qa_launch_options = options  # type: ignore[attr-defined]
    return demo


def launch(index_dir: str | Path | None = None, host: str = "127.0.0.1", port: int = 7860,
           assistant: Assistant | None = None, **launch_kwargs: Any) -> gr.Blocks:
    """Load the index and models once, then serve the app (blocks until stopped unless told otherwise).

    Args:
        index_dir: the index directory (default: the shipped ``index/``).
        host: the address to listen on (``0.0.0.0`` for every interface).
        port: the port.
        assistant: an already loaded assistant to serve instead.
        **launch_kwargs: more :meth:`gradio.Blocks.launch` options (for example ``prevent_thread_lock``).

    Who may change the index and the limits come from the address and the environment
    (:meth:`qa.access.Access.from_env`, :meth:`qa.access.Limits.from_env`), the same for ``qa serve`` and
    ``python app.py``; a share link (``share=True`` or ``GRADIO_SHARE``) counts as reachable from anywhere.

    Raises:
        qa.config.ConfigError: an access or limit variable cannot be used (before anything is loaded).
    """
    arenas = Settings.from_env().malloc_arenas
    if arenas:
        memory.limit_arenas(arenas)  # before the server's threads exist
    shared = bool(launch_kwargs.get("share")) or os.environ.get("GRADIO_SHARE", "").strip().lower() in {"1", "true"}
    access = Access.from_env(host, public=shared)
    limits = Limits.from_env()
    if assistant is None:
        assistant = Assistant.load(index_dir)
    assistant.reader  # load the reader now, not on the first question  # noqa: B018
    assistant.rereader  # and a cascade's second reader  # noqa: B018
    demo = build_app(assistant, access, limits)
    (log.warning if access.mode == "off" and "QA_READ_ONLY" not in access.reason else log.info)(
        "index editing: %s", access.reason)
    launch_kwargs.setdefault("show_error", True)
    for name, value in demo.qa_launch_options.items():  # type: ignore[attr-defined]
        launch_kwargs.setdefault(name, value)
    demo.launch(server_name=host, server_port=port, **launch_kwargs)
    return demo
