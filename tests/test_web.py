"""The web app: pure rendering functions, the handlers, and the running app driven with gradio_client.

The app runs in-process on a free port over a copy of the article index. Until the trained reader lands
in models/reader, the reader is ``$QA_READER`` if set, else the tiny random reader of conftest: its
answers are arbitrary, so these tests check structure (offsets, escaping, history, errors) with
``no_answer_threshold=-1e9`` (always answer) or ``1e9`` (always abstain). The tests of answer quality
are marked slow and need models/reader.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import SHIPPED_READER, needs_trained_reader
from qa.assistant import QuestionError
from qa.types import Answer, Candidate, Citation, Passage, ScoredPassage, Source

pytest.importorskip("gradio")
pytest.importorskip("gradio_client")

from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from qa import web  # noqa: E402

QUDS = "Who is the commander of the Quds Force?"
FOLLOW_UP = "Who does he report to?"
XSS_QUESTION = "<script>alert(1)</script> who is <img src=x onerror=alert(1)>?"


# --------------------------------------------------------------------------------------------------
# Helpers and fixtures


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(assistant, access=None, limits=None):
    """``build_app(assistant, access, limits)`` served on a free local port, with the launch options it asks
    for (logins, upload size); yields (url, demo)."""
    demo = web.build_app(assistant, access, limits)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, server_name="127.0.0.1", quiet=True, show_error=True,
                **demo.qa_launch_options)
    try:
        yield f"http://127.0.0.1:{port}/", demo
    finally:
        demo.close()


def reader_override(request) -> dict:
    """``{}`` when a real reader is configured (``$QA_READER`` or models/reader), else the tiny reader."""
    if os.environ.get("QA_READER") or (SHIPPED_READER / "config.json").exists():
        return {}
    return {"reader": request.getfixturevalue("tiny_reader")}


@pytest.fixture(scope="module")
def web_index(article_index, tmp_path_factory) -> Path:
    """The article index saved to a module-private folder (the shipped index/ is never touched)."""
    from qa import index as store

    path = tmp_path_factory.mktemp("web") / "index"
    store.save(article_index, path)
    return path


@pytest.fixture(scope="module")
def answering(web_index, request):
    """An assistant that always answers (whatever the reader), and the app serving it."""
    from qa.assistant import Assistant

    assistant = Assistant.load(web_index, no_answer_threshold=-1e9, **reader_override(request))
    with running(assistant) as (url, demo):
        yield assistant, url, demo


@pytest.fixture(scope="module")
def client(answering):
    return Client(answering[1], verbose=False)


@pytest.fixture(scope="module")
def abstaining(web_index, request):
    """A second app whose assistant always abstains."""
    from qa.assistant import Assistant

    assistant = Assistant.load(web_index, no_answer_threshold=1e9, **reader_override(request))
    with running(assistant) as (url, _):
        yield assistant, Client(url, verbose=False)


SOURCE_TEXT = ("Breaking: <script>alert('x')</script> The commander is Qassem Suleimani. "
               "He reports to <img src=x onerror=alert(1)> Khamenei & co.")


def make_answer(text: str | None = "Qassem Suleimani") -> tuple[Answer, Source]:
    source = Source.from_text(SOURCE_TEXT, title="<b>Evil</b> title", origin="/tmp/x/evil<b>.txt")
    start = SOURCE_TEXT.index("Qassem Suleimani")
    end = start + len("Qassem Suleimani")
    q_start = SOURCE_TEXT.index("The commander")
    q_end = SOURCE_TEXT.index("Suleimani.") + len("Suleimani.")
    cite = Citation(source.id, source.title, source.origin, start, end, SOURCE_TEXT[q_start:q_end], q_start, q_end)
    other_start = SOURCE_TEXT.index("<img")
    other = Citation(source.id, source.title, source.origin, other_start, other_start + 4, "x", other_start,
                     other_start + 1)
    candidates = [Candidate("Qassem Suleimani", 5.0, 0.8, cite), Candidate("<img", 1.0, 0.1, other)]
    passage = ScoredPassage(Passage(source.id, 0, len(SOURCE_TEXT), SOURCE_TEXT), 0.9, 0)
    if text is None:
        return Answer("<script>q</script>", None, 0.0, passages=[passage], candidates=candidates), source
    return Answer("<script>q</script>", text, 0.8, [cite], [passage], candidates,
                  notices=["The question was <long>."], timings={"total": 0.25}), source


def assert_safe(markup: str) -> None:
    lowered = markup.lower()
    assert "<script" not in lowered
    assert "<img" not in lowered
    assert "<b>" not in lowered


# --------------------------------------------------------------------------------------------------
# Pure rendering


def test_highlight_wraps_the_span_at_its_offsets():
    assert web.highlight("one two three", [(4, 7)]) == 'one <mark class="qa-mark">two</mark> three'


def test_highlight_escapes_text_inside_and_outside_the_mark():
    out = web.highlight("a <b> & <script>x</script>", [(2, 5)])
    assert out == 'a <mark class="qa-mark">&lt;b&gt;</mark> &amp; &lt;script&gt;x&lt;/script&gt;'


def test_highlight_uses_the_offset_of_a_slice():
    text = "0123456789"
    # The slice text[3:8] == "34567"; the span (4, 6) of the whole text is "45".
    assert web.highlight(text[3:8], [(4, 6)], offset=3) == '3<mark class="qa-mark">45</mark>67'


def test_highlight_merges_overlapping_spans_and_clips_to_the_text():
    out = web.highlight("abcdefgh", [(1, 4), (3, 6), (7, 100), (-5, 0)])
    assert out == 'a<mark class="qa-mark">bcdef</mark>g<mark class="qa-mark">h</mark>'


def test_highlight_escapes_labels_in_the_title_attribute():
    out = web.highlight("abc", [(0, 1, 'Q1: "<x>"')], tag_labels=True)
    assert 'title="Q1: &quot;&lt;x&gt;&quot;"' in out
    assert '<sup class="qa-ref">Q1</sup>' in out


def test_render_answer_shows_answer_confidence_citation_and_candidates():
    answer, source = make_answer()
    out = web.render_answer(answer, {source.id: source})
    c = answer.citations[0]
    assert "<strong class=\"qa-text\">Qassem Suleimani</strong>" in out
    assert "confidence 80%" in out
    assert "[1]" in out
    assert '<mark class="qa-mark">Qassem Suleimani</mark>' in out
    assert f"characters {c.start}–{c.end}" in out
    assert "&lt;b&gt;Evil&lt;/b&gt; title" in out
    assert "<details" in out and "Other candidate answers (1)" in out and "10%" in out
    assert "&lt;img" in out  # the other candidate, as text
    assert "The question was &lt;long&gt;." in out
    assert_safe(out)


def test_render_answer_says_when_the_accurate_reader_reread_the_question():
    answer, source = make_answer()
    answer.timings = {"total": 0.4}
    assert "Answered in 0.40 s</p>" in web.render_answer(answer, {source.id: source})
    answer.reader, answer.timings = "mpnet", {"reading": 0.1, "rereading": 0.3, "total": 0.5}
    assert "Answered in 0.50 s (reread by mpnet: the fast reader was unsure)</p>" in web.render_answer(answer)


def test_render_answer_highlights_exactly_the_cited_characters():
    answer, _ = make_answer()
    out = web.render_answer(answer)
    c = answer.citations[0]
    marked = out.split('<mark class="qa-mark">', 1)[1].split("</mark>", 1)[0]
    assert marked == SOURCE_TEXT[c.start:c.end]


def make_key_sentence_answer() -> tuple[Answer, Source]:
    """An answer to "Summarize the article": two sentences of SOURCE_TEXT, each a citation."""
    from qa.summary import key_sentence_answer

    source = Source.from_text(SOURCE_TEXT, title="<b>Evil</b> title", origin="/tmp/x/evil<b>.txt")
    first = SOURCE_TEXT.index("The commander")
    second = SOURCE_TEXT.index("He reports")
    spans = [(first, SOURCE_TEXT.index("Suleimani.") + len("Suleimani.")), (second, len(SOURCE_TEXT))]
    return key_sentence_answer("Summarize <the> article", source, spans), source


def test_render_key_sentences_shows_each_sentence_highlighted_and_numbered():
    answer, source = make_key_sentence_answer()
    out = web.render_answer(answer, {source.id: source})
    assert "Key sentences of “&lt;b&gt;Evil&lt;/b&gt; title”" in out
    assert "2 sentences, in the order of the text" in out
    for number, c in enumerate(answer.citations, start=1):
        assert f'<blockquote class="qa-cite">[{number}] “' in out
        assert f'<mark class="qa-mark">{web.esc(SOURCE_TEXT[c.start:c.end])}</mark>”' in out
        assert f"[{number}] &lt;b&gt;Evil&lt;/b&gt; title — characters {c.start}–{c.end}" in out
    assert "confidence" not in out  # chosen, not read: no reader probability to show
    assert_safe(out)


def test_the_sources_tab_highlights_every_key_sentence_and_scrolls_to_the_first(answering):
    assistant = answering[0]
    chat = web.WebChat(assistant)
    *_, (_, messages, turns, shown, source_html) = chat.chat("Summarize the article", [], None)
    turn = turns[-1]
    assert len(turn["spans"]) == 4 and turn["answer"].count("\n") == 3
    assert "Key sentences of" in messages[-1]["content"]
    sid = turn["spans"][0][0]
    assert shown["value"] == sid
    text = assistant.source(sid).text
    for _, start, end in turn["spans"]:
        assert f">{web.esc(text[start:end])}</mark>" in source_html
    first = turn["spans"][0]
    assert f'<mark class="qa-mark qa-focus" title="Q1: Summarize the article">{web.esc(text[first[1]:first[2]])}' \
        in source_html


def test_api_a_whole_article_question_returns_its_key_sentences(client, answering):
    result = client.predict("What is the author's main argument?", api_name="/ask")
    assert result["kind"] == "key_sentences" and len(result["citations"]) == 2
    text = answering[0].source(result["citations"][0]["source"]).text
    assert result["answer"].split("\n") == [text[c["start"]:c["end"]] for c in result["citations"]]


def test_render_abstention_says_so_and_shows_the_closest_passage_escaped():
    answer, source = make_answer(None)
    out = web.render_answer(answer, {source.id: source})
    assert "does not answer" in out
    assert "closest passages" in out
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in out
    assert f"characters 0–{len(SOURCE_TEXT)}" in out
    assert "below the answer threshold" in out
    assert "<mark" not in out
    assert_safe(out)


def test_render_question_escapes():
    out = web.render_question(XSS_QUESTION)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in out
    assert_safe(out)


def test_render_source_highlights_every_cited_span_in_place():
    source = Source.from_text(SOURCE_TEXT, title="T", origin="o")
    s1 = SOURCE_TEXT.index("Qassem")
    s2 = SOURCE_TEXT.index("Khamenei")
    out = web.render_source(source, [(s1, s1 + 6, "Q1: who?"), (s2, s2 + 8, "Q2: <who>")])
    assert '<mark class="qa-mark" title="Q1: who?">Qassem</mark>' in out
    assert '<mark class="qa-mark" title="Q2: &lt;who&gt;">Khamenei</mark>' in out
    assert "2 spans cited" in out
    assert_safe(out)


def test_render_source_marks_the_focused_span():
    source = Source.from_text("alpha beta gamma", title="T", origin="o")
    out = web.render_source(source, [(0, 5, "Q1: a"), (11, 16, "Q2: g")], focus=11)
    assert '<mark class="qa-mark" title="Q1: a">alpha</mark>' in out
    assert '<mark class="qa-mark qa-focus" title="Q2: g">gamma</mark>' in out


def test_render_report_lists_results_and_skipped_reasons_escaped():
    from qa.sources import LoadReport, Skipped

    report = LoadReport([], [Skipped("/tmp/up/<x>.exe", "unsupported file type <exe>")],
                        {"added": ["/tmp/gradio/abc/notes.txt"], "unchanged": [], "replaced": []})
    out = web.render_report(report, {"/tmp/gradio/abc/notes.txt": "notes.txt"})
    assert "<td>added</td><td>notes.txt</td>" in out
    assert "<td>skipped</td><td>/tmp/up/&lt;x&gt;.exe</td><td>unsupported file type &lt;exe&gt;</td>" in out


def test_parse_history_accepts_lists_json_and_dicts():
    assert web.parse_history(None) == []
    assert web.parse_history(["a", "b"]) == ["a", "b"]
    assert web.parse_history('["a", "b"]') == ["a", "b"]
    assert web.parse_history([{"question": "a", "answer": "X"}]) == [{"question": "a", "answer": "X"}]
    assert web.parse_history("just one question") == ["just one question"]
    with pytest.raises(QuestionError):
        web.parse_history([1, 2])
    with pytest.raises(QuestionError):
        web.parse_history('{"question": "a"}')


# --------------------------------------------------------------------------------------------------
# Handlers, in-process


class FailingAssistant:
    """Stands in for an assistant whose engine breaks."""

    def __init__(self, real):
        self.index = real.index

    def ask(self, question, history=None):
        raise RuntimeError("the reader exploded")

    def sources(self):
        return list(self.index.sources.values())


def test_a_failing_engine_shows_an_error_in_the_chat(answering):
    chat = web.WebChat(FailingAssistant(answering[0]))
    steps = list(chat.chat(QUDS, [], None))
    _, messages, turns, _, _ = steps[-1]
    assert turns[-1]["error"] is True
    assert "something went wrong" in messages[-1]["content"] and "reader exploded" in messages[-1]["content"]


def test_a_blank_or_unreadable_question_is_answered_with_a_message_not_an_exception(answering):
    chat = web.WebChat(answering[0])
    steps = list(chat.chat("   ", [], None))  # blank: nothing changes (a toast warns)
    assert len(steps) == 1
    turn = chat.answer_turn("\x00\x01", [])  # only control characters: the engine refuses it
    assert turn["error"] and "empty" in turn["html"]


def test_follow_ups_send_earlier_questions_with_their_answers(answering):
    assistant = answering[0]
    chat = web.WebChat(assistant)
    *_, (_, _, turns, _, _) = chat.chat(QUDS, [], None)
    first = turns[0]
    assert first["answer"] is not None and first["spans"]
    assert chat.history(turns) == [{"question": QUDS, "answer": first["answer"]}]
    *_, (_, messages, turns, shown, source_html) = chat.chat(FOLLOW_UP, turns, None)
    assert len(messages) == 4 and len(turns) == 2
    # The source view highlights both cited spans, on the cited source.
    sid, start, end = turns[0]["spans"][0]
    assert shown["value"] == turns[1]["spans"][0][0]
    text = assistant.source(sid).text
    assert f">{web.esc(text[start:end])}</mark>" in source_html
    assert source_html.count("<mark") >= 1


def test_the_index_panel_adds_files_and_reports_skipped_ones(saved_index, tmp_path, request):
    from qa.assistant import Assistant

    assistant = Assistant.load(saved_index, **reader_override(request))
    chat = web.WebChat(assistant)
    good = tmp_path / "zanzibar-notes.txt"
    good.write_text("Zanzibar Notes\n\nThe ferry to Zanzibar leaves Dar es Salaam at seven every morning.",
                    encoding="utf-8")
    bad = tmp_path / "tool.exe"
    bad.write_bytes(b"MZ\x00\x00")
    report, files, urls, dropdown, _, status = chat.add([str(good), str(bad)], "", None, [])
    assert "1 source added or replaced, 1 skipped" in report
    assert "<td>added</td><td>zanzibar-notes.txt</td>" in report
    assert "<td>skipped</td><td>tool.exe</td>" in report
    assert files is None and urls == ""
    new = [s for s in assistant.sources() if s.origin == good.name]  # an upload's name, not its folder
    assert new and dropdown["value"] == new[0].id
    assert new[0].id in [value for _, value in dropdown["choices"]]
    assert "2 sources" in status
    # The chat answers from the new index: retrieval finds the new text.
    assert any(p.passage.source_id == new[0].id for p in assistant.retrieve("When does the ferry to Zanzibar leave?"))
    # And a reload finds nothing new on disk (the add saved it).
    message, *_ = chat.reload(None, [])
    assert "has not changed" in message


FERRY = "When does the ferry to Zanzibar leave Dar es Salaam?"


def test_the_running_app_answers_during_an_upload_rebuild_shows_progress_and_then_answers_from_it(
        saved_index, tmp_path, request, monkeypatch):
    """Index tab through the running app: upload a file and paste a refused URL; while the new index is being
    built the chat still answers from the old one, the job reports progress, and afterwards the chat answers
    from the new index. Each source that could not be read is listed with its reason."""
    from gradio_client import handle_file

    from qa import building
    from qa.assistant import Assistant

    assistant = Assistant.load(saved_index, no_answer_threshold=-1e9, **reader_override(request))
    good = tmp_path / "zanzibar-notes.txt"
    good.write_text("Zanzibar Notes\n\nThe ferry to Zanzibar leaves Dar es Salaam at seven every morning.",
                    encoding="utf-8")
    embedding, release = threading.Event(), threading.Event()
    real_embed = building._embed_passages

    def slow_embed(*args, **kwargs):
        embedding.set()
        assert release.wait(60)
        return real_embed(*args, **kwargs)

    monkeypatch.setattr(building, "_embed_passages", slow_embed)
    with running(assistant) as (url, _):
        client = Client(url, verbose=False)
        job = client.submit([handle_file(str(good))], "http://127.0.0.1:9/private.html", None,
                            api_name="/add_sources")
        try:
            assert embedding.wait(60), "the rebuild never started"
            during = client.predict(FERRY, api_name="/ask")  # the chat is not blocked by the rebuild
            assert during["answer"] and {p["source"] for p in during["passages"]} <= set(assistant.index.sources)
            assert all("zanzibar" not in p["text"].lower() for p in during["passages"])
            progress = job.status().progress_data
            assert progress and "Reading 2 sources" in (progress[-1].desc or "")
        finally:
            release.set()
        report = job.result(timeout=120)[0]
        assert "1 source added or replaced, 1 skipped" in report
        assert "<td>added</td><td>zanzibar-notes.txt</td>" in report
        assert "<td>skipped</td><td>http://127.0.0.1:9/private.html</td>" in report and "loopback" in report
        after = client.predict(FERRY, api_name="/ask")
    new = next(s.id for s in assistant.sources() if s.title == "Zanzibar Notes")
    assert after["passages"][0]["source"] == new
    assert any(c["source"] == new for c in after["citations"]) or after["answer"] is None


def test_reload_picks_up_an_index_rebuilt_on_disk_by_qa_index_build(saved_index, tmp_path, request, monkeypatch):
    from qa import cli
    from qa.assistant import Assistant

    assistant = Assistant.load(saved_index, **reader_override(request))
    chat = web.WebChat(assistant)
    folder = tmp_path / "new-sources"
    folder.mkdir()
    (folder / "zanzibar-notes.txt").write_text(
        "Zanzibar Notes\n\nThe ferry to Zanzibar leaves Dar es Salaam at seven every morning.", encoding="utf-8")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # -q sets it for the process: undone after the test
    assert cli.main(["index", "build", str(folder), "--index", str(saved_index), "-q"]) == 0  # replaces it
    assert len(assistant.sources()) == 1 and assistant.sources()[0].title != "Zanzibar Notes"  # not yet
    message, dropdown, source_html, status = chat.reload(None, [])
    assert "Reloaded" in message
    assert [s.title for s in assistant.sources()] == ["Zanzibar Notes"]
    assert dropdown["value"] == assistant.sources()[0].id and "Zanzibar" in source_html
    assert "1 source," in status
    assert all(p.passage.source_id == assistant.sources()[0].id for p in assistant.retrieve(FERRY))


# --------------------------------------------------------------------------------------------------
# The running app, through gradio_client


def test_the_page_is_served(answering):
    with urllib.request.urlopen(answering[1], timeout=30) as response:
        assert response.status == 200
        assert "Article QA" in response.read().decode("utf-8")


def test_only_ask_is_a_documented_endpoint(client):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert list(endpoints) == ["/ask"]
    names = [p["parameter_name"] for p in endpoints["/ask"]["parameters"]]
    assert names == ["question", "history"]


def test_api_ask_returns_json_whose_offsets_slice_the_source_to_the_answer(client, answering):
    assistant = answering[0]
    result = client.predict(QUDS, api_name="/ask")
    assert json.loads(json.dumps(result)) == result  # plain JSON
    assert set(result) >= {"question", "answer", "score", "citations", "candidates", "passages", "query", "notices"}
    assert result["question"] == QUDS
    assert isinstance(result["answer"], str) and result["answer"]
    assert 0 <= result["score"] <= 1
    assert result["citations"], "an answer always has a citation"
    for citation in result["citations"]:
        text = assistant.source(citation["source"]).text
        assert text[citation["start"]:citation["end"]] == result["answer"]
        assert text[citation["quote_start"]:citation["quote_end"]] == citation["quote"]
    for candidate in result["candidates"]:
        c = candidate["citation"]
        assert assistant.source(c["source"]).text[c["start"]:c["end"]] == candidate["answer"]
    for passage in result["passages"]:
        assert assistant.source(passage["source"]).text[passage["start"]:passage["end"]] == passage["text"]


def test_api_follow_up_uses_the_history(client):
    # With the earlier answer given, the pronoun is resolved from it (whatever the reader).
    history = [{"question": QUDS, "answer": "Qassem Suleimani"}]
    result = client.predict(FOLLOW_UP, history, api_name="/ask")
    assert result["question"] == FOLLOW_UP
    assert result["query"] == "Who does Qassem Suleimani report to?"
    # Earlier questions alone (a list, or a JSON list): the engine answers them again to resolve "he".
    as_list = client.predict(question=FOLLOW_UP, history=[QUDS], api_name="/ask")
    as_json = client.predict(question=FOLLOW_UP, history=json.dumps([QUDS]), api_name="/ask")
    assert as_list["query"] == as_json["query"]
    assert as_list["answer"] == as_json["answer"]
    without = client.predict(FOLLOW_UP, api_name="/ask")
    assert without["query"] == FOLLOW_UP


def test_api_errors_are_clear(client):
    with pytest.raises(AppError, match="empty"):
        client.predict("   ", api_name="/ask")
    with pytest.raises(AppError, match="history"):
        client.predict(QUDS, [1, 2], api_name="/ask")
    # The app still answers afterwards.
    assert client.predict(QUDS, api_name="/ask")["answer"]


def test_api_abstention(abstaining):
    assistant, abstaining_client = abstaining
    result = abstaining_client.predict(QUDS, api_name="/ask")
    assert result["answer"] is None
    assert result["score"] == 0
    assert result["citations"] == []
    assert result["passages"], "an abstention still returns the passages that were read"


def test_an_injected_script_comes_back_as_text_and_is_escaped_in_the_chat(client):
    result = client.predict(XSS_QUESTION, api_name="/ask")
    assert result["question"] == XSS_QUESTION  # JSON data: the text as asked
    _, messages, *_ = client.predict(XSS_QUESTION, None, api_name="/chat")
    rendered = json.dumps(messages)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered
    assert "<script" not in rendered.lower() and "<img" not in rendered.lower()


def test_the_chat_keeps_each_sessions_history(answering):
    first, second = Client(answering[1], verbose=False), Client(answering[1], verbose=False)
    first.predict(QUDS, None, api_name="/chat")
    _, messages, *_ = first.predict(FOLLOW_UP, None, api_name="/chat")
    assert len(messages) == 4  # two turns in this session
    _, others, *_ = second.predict(QUDS, None, api_name="/chat")
    assert len(others) == 2  # a new session starts empty


# --------------------------------------------------------------------------------------------------
# Answer quality: the trained reader


@pytest.fixture(scope="module")
def trained_client(web_index):
    from qa.assistant import Assistant

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QA_READER", str(SHIPPED_READER))
        assistant = Assistant.load(web_index)
    with running(assistant) as (url, _):
        yield Client(url, verbose=False)


@pytest.mark.slow
@needs_trained_reader
def test_trained_reader_names_the_quds_force_commander(trained_client):
    result = trained_client.predict(QUDS, api_name="/ask")
    assert result["answer"] and "Suleimani" in result["answer"]
    follow_up = trained_client.predict(FOLLOW_UP, [QUDS], api_name="/ask")
    assert "Suleimani" in follow_up["query"]


@pytest.mark.slow
@needs_trained_reader
def test_trained_reader_abstains_on_a_question_the_article_does_not_answer(trained_client):
    result = trained_client.predict("What is the capital of France?", api_name="/ask")
    assert result["answer"] is None
    assert result["passages"]
