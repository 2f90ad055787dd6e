"""The `qa` command: JSON answers with citations that slice the source, and one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from conftest import ARTICLE, REPO, needs_trained_reader


def run_qa(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qa.cli", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})})


def test_ask_json_has_the_documented_shape_and_offsets_that_slice_the_article(tiny_reader_dir):
    out = run_qa("ask", "Who is the commander of the Quds Force?", "--json", env={"QA_READER": str(tiny_reader_dir)})
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"question", "answer", "score", "citations"} <= data.keys()
    article = ARTICLE.read_text(encoding="utf-8")
    for c in data["citations"]:
        assert {"source", "title", "start", "end", "quote", "quote_start", "quote_end"} <= c.keys()
        assert article[c["start"]:c["end"]] == data["answer"]
        assert article[c["quote_start"]:c["quote_end"]] == c["quote"]


def test_ask_a_whole_article_question_prints_each_key_sentence_with_its_offsets(tiny_reader_dir):
    env = {"QA_READER": str(tiny_reader_dir)}
    out = run_qa("ask", "Summarize the article", "--json", env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    article = ARTICLE.read_text(encoding="utf-8")
    assert data["kind"] == "key_sentences" and len(data["citations"]) == 4
    assert data["answer"].split("\n") == [article[c["start"]:c["end"]] for c in data["citations"]]
    for c in data["citations"]:
        assert article[c["quote_start"]:c["quote_end"]] == c["quote"]
    plain = run_qa("ask", "What is the author's main argument?", env=env)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[0].startswith("Key sentences of Iran and US: The Enemy of My Enemy is My Friend")
    assert [line.split()[0] for line in lines[1::2]] == ["[1]", "[2]"]
    assert all(line.startswith('    "') for line in lines[2::2])


@needs_trained_reader
def test_the_shipped_reader_names_the_commander_of_the_quds_force():
    out = run_qa("ask", "Who is the commander of the Quds Force?", "--json")
    data = json.loads(out.stdout)
    assert data["answer"] == "Qassem Suleimani"
    c = data["citations"][0]
    assert ARTICLE.read_text(encoding="utf-8")[c["start"]:c["end"]] == "Qassem Suleimani"


def test_an_empty_question_is_one_line_on_stderr_and_a_non_zero_exit():
    out = run_qa("ask", "   ")
    assert out.returncode == 1
    assert out.stderr.strip().count("\n") == 0 and "empty" in out.stderr
    assert "Traceback" not in out.stderr


def test_a_missing_index_says_how_to_rebuild_it(tmp_path):
    out = run_qa("ask", "Who?", "--index", str(tmp_path / "none"))
    assert out.returncode == 1 and "qa index build" in out.stderr and "Traceback" not in out.stderr


def test_info_lists_the_shipped_article():
    out = run_qa("info", "--json")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout)
    assert info["passages"] > 10
    assert info["sources"][0]["title"] == "Iran and US: The Enemy of My Enemy is My Friend"


def test_info_says_where_passage_screening_is_on():
    plain = run_qa("info")
    screened = run_qa("info", env={"QA_SCREEN_MARGIN": "-1"})
    assert plain.returncode == 0 and screened.returncode == 0, plain.stderr + screened.stderr
    assert "screened" not in plain.stdout
    assert "passages past the best screened by minilm at margin -1" in screened.stdout
