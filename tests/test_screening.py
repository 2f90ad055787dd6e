"""Passage screening (``screen_margin``): where the accurate reader reads on past a question's best passage, a small
reader's margins decide which of the remaining passages it reads.

Two tiny random readers stand in: ``small`` screens (in a cascade it is the first reader, which abstains on every
question so that the second rereads them all); ``large`` always answers and never exits early, so every question
reaches the screen.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from conftest import tiny_reader_pair

QUESTIONS = ["Who leads the Quds Force?", "When did the United States withdraw from Iraq?",
             "What does ISIS stand for?", "Who is Hamid Aboutalebi?", "What is the capital of France?"]


@pytest.fixture(scope="module")
def small_and_large(tiny_reader_dir, tmp_path_factory):
    small, large = tiny_reader_pair(tiny_reader_dir, tmp_path_factory.mktemp("screening"), seed=7)
    (small / "calibration.json").write_text(json.dumps({"no_answer_threshold": 1e9}))
    (large / "calibration.json").write_text(json.dumps({"no_answer_threshold": -1e9, "early_exit_margin": 1e9}))
    return str(small), str(large)


@pytest.fixture()
def engine(small_and_large, monkeypatch, article_index, embedder):
    """An Assistant over the article: ``cascade`` (small, then large), or ``large`` alone with small as its screener."""
    from qa import Assistant
    from qa.config import Settings
    from qa.readers import CASCADES, SCREENERS

    small, large = small_and_large
    monkeypatch.setitem(CASCADES, "tiny-screened", (small, large))
    monkeypatch.setitem(SCREENERS, large, small)
    names = {"cascade": "tiny-screened", "large": large}
    return lambda which, **settings: Assistant(article_index, embedder, None,
                                               Settings(reader=names[which], cascade_cut=1.01, **settings))


def _same(a, b):
    return (a.text, round(a.score, 6), [(c.start, c.end) for c in a.citations], [c.text for c in a.candidates]) == \
        (b.text, round(b.score, 6), [(c.start, c.end) for c in b.citations], [c.text for c in b.candidates])


@pytest.mark.parametrize("which", ["cascade", "large"])
def test_a_margin_no_passage_reaches_reads_only_the_best_passage_and_minus_infinity_reads_them_all(engine, which):
    unscreened = engine(which, screen_margin=-math.inf).ask_many(QUESTIONS)
    every = engine(which, screen_margin=-1e9).ask_many(QUESTIONS)
    only_best = engine(which, screen_margin=1e9).ask_many(QUESTIONS)
    exits_at_once = engine(which, screen_margin=-math.inf, early_exit_margin=-math.inf).ask_many(QUESTIONS)
    assert all(_same(a, b) for a, b in zip(unscreened, every))
    assert all(_same(a, b) for a, b in zip(only_best, exits_at_once))
    assert all(a.citations[0].start >= a.passages[0].passage.start and a.citations[0].end <= a.passages[0].passage.end
               for a in only_best)
    assert any(not _same(a, b) for a, b in zip(only_best, unscreened))


def test_the_cascade_screens_with_the_margins_its_first_reader_has_read_already(engine, monkeypatch):
    assistant = engine("cascade", screen_margin=0.0)
    assert assistant.screeners == [None, assistant.stages[0].reader] and assistant.screen_margins == [None, 0.0]

    def no_second_reading(items):
        raise AssertionError("the first reader read every passage: its margins are known")

    monkeypatch.setattr(assistant.reader, "passage_margins", no_second_reading)
    answers = assistant.ask_many(QUESTIONS)
    assert all(a.text is not None and "rereading" in a.timings for a in answers)


def test_a_passage_is_read_where_the_screeners_margin_reaches_the_screen_margin(engine, small_and_large):
    from qa.assistant import shared_reader

    assistant = engine("large")
    small = shared_reader(assistant.stages[0].replace(reader=small_and_large[0]))
    question = QUESTIONS[0]
    passages = [p.passage.text for p in assistant.retrieve(question)]
    margins = small.passage_margins([(question, passages[1:])])[0]
    cut = sorted(margins)[-1]  # only the remaining passage(s) with the highest margin reach it
    kept = [passages[0]] + [p for p, m in zip(passages[1:], margins) if m >= cut]
    got = engine("large", screen_margin=cut).ask(question)
    expected = assistant.reader.read(question, kept, top_k=assistant.settings.n_best)
    assert got.text == expected.spans[0].text
    assert engine("large", screen_margin=cut).screener is not None


def test_the_margin_comes_from_the_readers_calibration_and_a_reader_without_a_screener_is_not_screened(
        engine, small_and_large, article_index, embedder, tiny_reader):
    from qa import Assistant
    from qa.config import Settings

    large = small_and_large[1]
    calibration = json.loads((Path(large) / "calibration.json").read_text())
    (Path(large) / "calibration.json").write_text(json.dumps({**calibration, "screen_margin": 2.5}))
    try:
        assert engine("large").screen_margins == [2.5]
        assert engine("cascade").screen_margins == [None, 2.5]
        assert engine("large", screen_margin=-math.inf).screen_margins == [None]
        assert Settings(reader=large, screen_margin=1.0).screening_margin() == 1.0
    finally:
        (Path(large) / "calibration.json").write_text(json.dumps(calibration))
    assert engine("large").screen_margins == [None]  # no calibrated margin: every passage is read
    assert Assistant(article_index, embedder, None, Settings(reader=small_and_large[0], screen_margin=1.0)) \
        .screen_margins == [None]  # no screener for it
    assert Assistant(article_index, embedder, tiny_reader, Settings(screen_margin=1.0)).screen_margins == [None]
    assert "screening" in engine("large", screen_margin=1.0).info()
    assert engine("cascade", screen_margin=1.0).info()["cascade"]["screen_margins"] == [None, 1.0]


def test_screening_can_be_set_from_the_environment(monkeypatch):
    from qa.config import Settings

    monkeypatch.setenv("QA_SCREEN_MARGIN", "-inf")
    assert Settings.from_env().screening_margin() == -math.inf
    monkeypatch.setenv("QA_SCREEN_MARGIN", "-4")
    assert Settings.from_env().screen_margin == -4.0
