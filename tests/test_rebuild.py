"""Issue #5, end to end: build an index from new sources of several formats, ask, and cite the right one.

The documents are written here (tiny, with facts no other source has), indexed with the real embedder
through ``qa index build``, and asked with the shipped reader so that the answers are real answers.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from conftest import needs_trained_reader
from qa import cli
from qa import index as store

DOCS = {
    "harbour.txt": (
        "Harbour Report\n\n"
        "The new container terminal in Port Aldana opened on 3 March. It was built by the engineering firm "
        "Korvell Marine at a cost of 41 million euros. The terminal can handle 800,000 containers a year.\n"),
    "festival.md": (
        "# Lakeside Jazz Festival\n\n"
        "The Lakeside Jazz Festival is held every July in the town of Mirren. This year the opening concert "
        "was given by the pianist Elena Sorvino. About 12,000 visitors came over three days.\n"),
    "election.html": (
        "<!doctype html><html><head><title>Council vote in Brelford</title></head><body>"
        "<nav><a href='/'>Home</a> | <a href='/news'>News</a></nav>"
        "<article><h1>Council vote in Brelford</h1>"
        "<p>The Brelford city council elected Tomas Hadley as its new mayor on Tuesday. Hadley, a former "
        "schoolteacher, won 27 of the 45 votes.</p>"
        "<p>He replaces Margaret Olsen, who retired after ten years in office.</p></article>"
        "<script>var tracking = 1;</script></body></html>"),
}
TITLES = {"harbour.txt": "Harbour Report", "festival.md": "Lakeside Jazz Festival",
          "election.html": "Council vote in Brelford"}
QUESTIONS = [  # (question, the file that answers it, the accepted answers: each a correct span, as SQuAD's golds)
    ("Which firm built the container terminal in Port Aldana?", "harbour.txt", {"Korvell Marine"}),
    ("Who gave the opening concert of the Lakeside Jazz Festival?", "festival.md",
     {"Elena Sorvino", "pianist Elena Sorvino", "the pianist Elena Sorvino"}),
    ("Who was elected mayor of Brelford?", "election.html", {"Tomas Hadley"}),
]
NEW_DOC = ("observatory.txt", "Observatory Notes\n\nThe Halvard Observatory was opened in 1974 by the astronomer "
                              "Ingrid Valen. Its main telescope has a mirror 2.4 metres wide.\n")
NEW_QUESTION = ("Who opened the Halvard Observatory?", "Ingrid Valen")


@pytest.fixture(scope="module")
def docs(tmp_path_factory) -> Path:
    """A folder with the three documents and one file of an unsupported type."""
    folder = tmp_path_factory.mktemp("docs")
    for name, text in DOCS.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "slides.pptx").write_bytes(b"PK\x03\x04 not a supported format")
    return folder


@pytest.fixture(scope="module")
def built(docs, tmp_path_factory) -> Path:
    """``qa index build DOCS --index PATH``, run in-process."""
    path = tmp_path_factory.mktemp("built") / "index"
    assert cli.main(["index", "build", str(docs), "--index", str(path)]) == 0
    return path


@pytest.fixture()
def index_copy(built, tmp_path) -> Path:
    """A private copy of the built index, for tests that change it."""
    path = tmp_path / "index"
    shutil.copytree(built, path)
    return path


def source_id(index_dir: Path, origin: str) -> str:
    return next(s.id for s in store.load(index_dir).sources.values() if s.origin == origin)


# ------------------------------------------------------------------------------------------------
# The command line: build, list, remove, add


def test_index_build_shows_progress_and_a_summary_of_what_was_added_and_skipped(docs, tmp_path, capsys,
                                                                                monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    path = tmp_path / "index"
    assert cli.main(["index", "build", str(docs), "--index", str(path)]) == 0
    out, err = capsys.readouterr()
    for name in DOCS:
        assert f"added     {docs / name}\n" in out
    assert f"skipped   {docs / 'slides.pptx'}: unsupported file type .pptx" in out
    summary = out.strip().splitlines()[-1]
    passages = len(store.load(path).passages)
    assert summary.startswith(f"3 sources added or replaced, 1 skipped, 3 sources and {passages} passages in {path} (")
    assert summary.endswith(" s)")
    assert "100%" in err  # the progress bar of the encoding, on stderr


def test_index_build_of_nothing_readable_leaves_the_index_unchanged(built, tmp_path, capsys):
    before = (built / "manifest.json").read_bytes()
    bad = tmp_path / "only.pptx"
    bad.write_bytes(b"PK")
    with pytest.raises(SystemExit, match="no readable source.*unchanged"):
        cli.main(["index", "build", str(bad), "--index", str(built)])
    assert (built / "manifest.json").read_bytes() == before


def test_index_list_remove_and_add_from_the_command_line(docs, index_copy, capsys, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # -q below sets it for the process: undone after the test
    assert cli.main(["index", "list", "--index", str(index_copy)]) == 0
    listing = capsys.readouterr().out
    for name, title in TITLES.items():
        assert f"{title}  <{docs / name}>" in listing
    gone = source_id(index_copy, str(docs / "festival.md"))
    assert cli.main(["index", "remove", gone, "--index", str(index_copy)]) == 0
    assert f"removed {gone} (Lakeside Jazz Festival)" in capsys.readouterr().out
    assert {s.origin for s in store.load(index_copy).sources.values()} == {str(docs / "harbour.txt"),
                                                                           str(docs / "election.html")}
    assert cli.main(["index", "add", str(docs), "--index", str(index_copy), "-q"]) == 0
    out = capsys.readouterr().out
    assert f"added     {docs / 'festival.md'}" in out
    assert f"unchanged {docs / 'harbour.txt'}" in out
    assert "1 source added or replaced, 1 skipped, 3 sources" in out
    assert source_id(index_copy, str(docs / "festival.md")) == gone  # same content, same id


# ------------------------------------------------------------------------------------------------
# Answers cite the source that holds them (the shipped reader)


@needs_trained_reader
def test_each_question_is_answered_from_the_source_that_holds_the_answer(built, docs):
    from qa.assistant import Assistant

    assistant = Assistant.load(built)
    answers = assistant.ask_many([q for q, _, _ in QUESTIONS])
    for (question, name, expected), answer in zip(QUESTIONS, answers):
        assert answer.text in expected, (question, answer.text)
        c = answer.citations[0]
        source = assistant.source(c.source_id)
        assert c.source_id == source_id(built, str(docs / name)), (question, c.origin)
        assert (c.title, c.origin) == (TITLES[name], str(docs / name))
        assert source.text[c.start:c.end] == answer.text
        assert source.text[c.quote_start:c.quote_end] == c.quote and answer.text in c.quote
        assert all(not (cc.source_id == c.source_id and cc.start == c.start) for cc in answer.citations[1:])


@needs_trained_reader
def test_add_sources_then_ask_answers_from_the_new_source_in_the_same_process(index_copy, tmp_path):
    from qa.assistant import Assistant

    assistant = Assistant.load(index_copy)
    question, expected = NEW_QUESTION
    before = assistant.ask(question)
    assert expected not in (before.text or "")
    new = tmp_path / NEW_DOC[0]
    new.write_text(NEW_DOC[1], encoding="utf-8")

    report = assistant.add_sources([new])

    assert report.changes == {"added": [str(new)], "unchanged": [], "replaced": []} and report.skipped == []
    after = assistant.ask(question)
    assert after.text is not None and expected in after.text
    c = after.citations[0]
    assert (c.title, c.origin) == ("Observatory Notes", str(new))
    assert assistant.source(c.source_id).text[c.start:c.end] == after.text
    assert "Korvell Marine" in (assistant.ask(QUESTIONS[0][0]).text or "")  # the older sources still answer
    assert [s.origin for s in Assistant.load(index_copy).sources()][-1] == str(new)  # saved to disk


# ------------------------------------------------------------------------------------------------
# Answering while the index changes


def test_an_answer_during_an_index_swap_reads_one_consistent_index(index_copy, docs, tiny_reader, monkeypatch):
    """``remove_source`` swaps the index while a question is answered: the answer uses the old or the new
    index, never the passages of one with the sources of the other."""
    import qa.assistant as assistant_module
    from qa.assistant import Assistant

    assistant = Assistant.load(index_copy, reader=tiny_reader, no_answer_threshold=-1e9)  # always answers
    harbour = source_id(index_copy, str(docs / "harbour.txt"))
    question = QUESTIONS[0][0]
    assert any(p.passage.source_id == harbour for p in assistant.retrieve(question))

    building_retriever, release = threading.Event(), threading.Event()
    real = assistant_module.Retriever

    class SlowRetriever(real):
        def __init__(self, *args, **kwargs):
            building_retriever.set()
            assert release.wait(30)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(assistant_module, "Retriever", SlowRetriever)
    remover = threading.Thread(target=assistant.remove_source, args=(harbour,))
    remover.start()
    try:
        assert building_retriever.wait(30)
        during = assistant.ask(question)  # the new index is not searchable yet: the old one answers, whole
        assert any(p.passage.source_id == harbour for p in during.passages)
    finally:
        release.set()
        remover.join(30)
    after = assistant.ask(question)
    assert harbour not in assistant.index.sources and harbour not in store.load(index_copy).sources
    assert all(c.source_id != harbour for c in after.citations)
    assert all(p.passage.source_id != harbour for p in after.passages)
