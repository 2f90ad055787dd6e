"""bench/cascade.py: the cascade of a fast and an accurate reader, computed from each reader's own answers.

The fast reader's answer stands where its confidence reaches the cut; elsewhere the accurate reader's answer is
taken and both readers' times are paid. The engine's per-question results carry the confidence it uses.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import bench_module, tiny_reader_pair


def _bench_cascade():
    return bench_module("cascade")


def _result(id, gold, prediction, f1, confidence, seconds):
    return {"id": id, "question": f"question {id}", "history": [], "gold": gold, "prediction": prediction,
            "score": confidence if prediction else 0.0, "confidence": confidence, "em": float(f1 == 1.0),
            "f1": f1, "recall": True, "cited": None, "seconds": seconds, "follow_up": False, "query": ""}


FAST = [_result("sure", ["Tehran"], "Tehran", 1.0, 0.95, 0.1),
        _result("unsure", ["Qassem Suleimani"], "Suleimani's", 0.5, 0.40, 0.1),
        _result("abstained", ["2011"], None, 0.0, 0.55, 0.1),
        _result("no-answer", [], "Baghdad", 0.0, 0.20, 0.1)]
SLOW = [_result("sure", ["Tehran"], "Tehran", 1.0, 0.97, 0.5),
        _result("unsure", ["Qassem Suleimani"], "Qassem Suleimani", 1.0, 0.90, 0.5),
        _result("abstained", ["2011"], "2011", 1.0, 0.80, 0.5),
        _result("no-answer", [], None, 1.0, 0.70, 0.5)]


def test_the_fast_answer_stands_at_or_above_the_cut_and_the_accurate_reader_rereads_below_it_and_abstentions():
    cascade = _bench_cascade().cascade
    results, reread = cascade(FAST, SLOW, 0.55)
    assert [r["prediction"] for r in results] == ["Tehran", "Qassem Suleimani", "2011", None]
    assert reread == pytest.approx(0.75)
    assert [r["seconds"] for r in results] == pytest.approx([0.1, 0.6, 0.6, 0.6])


def test_a_cut_of_zero_rereads_only_abstentions_and_a_cut_above_one_rereads_everything():
    cascade = _bench_cascade().cascade
    results, reread = cascade(FAST, SLOW, 0.0)
    assert [r["prediction"] for r in results] == ["Tehran", "Suleimani's", "2011", "Baghdad"]
    assert reread == pytest.approx(0.25)
    results, reread = cascade(FAST, SLOW, 1.01)
    assert reread == 1.0 and [r["prediction"] for r in results] == [r["prediction"] for r in SLOW]
    assert [r["seconds"] for r in results] == pytest.approx([0.6] * 4)


def test_results_of_other_questions_are_refused():
    with pytest.raises(ValueError, match="not for the same questions"):
        _bench_cascade().cascade(FAST, SLOW[::-1], 0.5)


def test_an_engine_row_gives_f1_unanswerable_questions_answered_and_latency():
    bench = _bench_cascade()
    rows = bench.compare(FAST, SLOW, [0.55], ("fast", "slow"), bench.engine_row)
    assert [r["reader"] for r in rows] == ["fast", "slow", "cascade@0.55"]
    assert [r["f1"] for r in rows] == [37.5, 100.0, 100.0]
    assert [r["unanswerable_answered"] for r in rows] == [1, 0, 0]
    assert rows[2]["reread"] == 0.75 and rows[2]["p50_ms"] == pytest.approx(600.0)
    assert rows[0]["mean_ms"] == pytest.approx(100.0)


def test_the_reader_level_comparison_reads_prediction_files_of_the_evaluation(tmp_path, capsys):
    bench = _bench_cascade()
    lines = lambda rows: "".join(json.dumps({"set": "xquad.en", "id": r["id"], "prediction": r["prediction"] or "",  # noqa: E731
                                             "margin": 1.0, "probability": r["confidence"], "em": r["em"],
                                             "f1": r["f1"]}) + "\n" for r in rows)
    (tmp_path / "fast.jsonl").write_text(lines(FAST))
    (tmp_path / "slow.jsonl").write_text(lines(SLOW))
    out = tmp_path / "cascade.json"
    bench.main(["--sets", "", "--cuts", "0.5", "--predictions", str(tmp_path / "fast.jsonl"),
                str(tmp_path / "slow.jsonl"), "--json", str(out)])
    [rows] = json.loads(out.read_text())["reader"].values()
    assert [(r["reader"], r["f1"], r["reread"]) for r in rows] == [("minilm", 37.5, None), ("mpnet", 100.0, None),
                                                                  ("cascade@0.5", 75.0, 0.5)]
    assert "cascade@0.5" in capsys.readouterr().out


def test_the_engine_gives_an_abstention_the_confidence_left_for_no_answer(article_index, embedder, tiny_reader):
    from qa import Assistant
    from qa.config import Settings
    from qa.evaluation import answer_rows

    rows = [{"id": "1", "question": "Who leads the Quds Force?", "answers": ["Qassem Suleimani"], "history": []}]
    answering = Assistant(article_index, embedder, tiny_reader, Settings(no_answer_threshold=-1e9))
    abstaining = Assistant(article_index, embedder, tiny_reader, Settings(no_answer_threshold=1e9))
    [answered], [abstained] = answer_rows(rows, answering), answer_rows(rows, abstaining)
    assert answered["prediction"] is not None and answered["confidence"] == answered["score"] > 0
    candidates = abstaining.ask(rows[0]["question"]).candidates
    assert abstained["prediction"] is None and candidates
    assert abstained["confidence"] == pytest.approx(1 - sum(c.probability for c in candidates))


# ------------------------------------------------------------------------------------------------
# the cascade in the engine (QA_READER=auto): two tiny random readers, each with its own calibration

QUESTIONS = ["Who leads the Quds Force?", "When did the United States withdraw from Iraq?",
             "What does ISIS stand for?", "Who is Hamid Aboutalebi?", "What is the capital of France?",
             "Which militias fought in Tikrit?"]


@pytest.fixture(scope="module")
def two_readers(tiny_reader_dir, tmp_path_factory):
    """Two tiny readers with different weights and thresholds: ``first`` always answers (threshold -1e9), ``second``
    never does (1e9)."""
    first, second = tiny_reader_pair(tiny_reader_dir, tmp_path_factory.mktemp("cascade"), seed=1)
    (first / "calibration.json").write_text(json.dumps({"no_answer_threshold": -1e9}))
    (second / "calibration.json").write_text(json.dumps({"no_answer_threshold": 1e9}))
    return str(first), str(second)


@pytest.fixture()
def cascade_of(two_readers, monkeypatch, article_index, embedder):
    """An Assistant over the article with the cascade of the two tiny readers at a given cut."""
    from qa import Assistant
    from qa.config import Settings
    from qa.readers import CASCADES

    monkeypatch.setitem(CASCADES, "tiny-cascade", two_readers)
    return lambda reader="tiny-cascade", **settings: Assistant(article_index, embedder, None,
                                                               Settings(reader=reader, **settings))


def _same(a, b):
    return (a.text, round(a.score, 6), [(c.start, c.end) for c in a.citations], [c.text for c in a.candidates]) == \
        (b.text, round(b.score, 6), [(c.start, c.end) for c in b.citations], [c.text for c in b.candidates])


def test_a_fast_reader_that_always_answers_answers_alone_at_cut_zero_and_the_second_rereads_everything_above_one(
        cascade_of, two_readers):
    first, second = (cascade_of(r).ask_many(QUESTIONS) for r in two_readers)
    never = cascade_of(cascade_cut=0.0).ask_many(QUESTIONS)
    always = cascade_of(cascade_cut=1.01).ask_many(QUESTIONS)
    assert all(_same(a, b) and a.reader == two_readers[0] for a, b in zip(never, first))
    assert all(_same(a, b) and a.reader == two_readers[1] for a, b in zip(always, second))
    assert all("rereading" in a.timings for a in always) and not any("rereading" in a.timings for a in never)


def test_the_second_reader_rereads_exactly_where_the_first_is_unsure_with_its_own_threshold(cascade_of,
                                                                                            two_readers):
    first, second = (cascade_of(r).ask_many(QUESTIONS) for r in two_readers)
    cut = sorted(a.confidence for a in first)[len(first) // 2]  # about half are reread
    got = cascade_of(cascade_cut=cut).ask_many(QUESTIONS)
    for a, f, s in zip(got, first, second):
        assert _same(a, f if f.confidence >= cut else s)
    assert 0 < sum(f.confidence < cut for f in first) < len(first)
    # each reader keeps its own threshold: the first always answers, the second never does
    assert [a.text is not None for a in got] == [f.confidence >= cut for f in first]


def test_a_first_reader_abstention_is_always_reread_even_at_cut_zero(cascade_of, two_readers):
    from qa.readers import CASCADES

    refuser, answerer = two_readers[1], two_readers[0]  # the refuser never answers, the answerer always does
    CASCADES["tiny-refuser-first"] = (refuser, answerer)
    try:
        got = cascade_of("tiny-refuser-first", cascade_cut=0.0).ask_many(QUESTIONS)
    finally:
        del CASCADES["tiny-refuser-first"]
    direct = cascade_of(answerer).ask_many(QUESTIONS)
    assert all(_same(a, d) and a.reader == answerer and "rereading" in a.timings for a, d in zip(got, direct))


def test_the_cascade_says_which_readers_it_uses_and_where_it_cuts(cascade_of, two_readers):
    from qa.readers import reader_label

    info = cascade_of(cascade_cut=0.6).info()
    assert info["reader"] == "tiny-cascade" and info["cascade"]["readers"] == list(two_readers)
    assert info["cascade"]["no_answer_thresholds"] == [-1e9, 1e9] and info["cascade"]["cut"] == 0.6
    assert reader_label("tiny-cascade") == f"tiny-cascade: {two_readers[0]}, then {two_readers[1]}"
    assert "cascade" not in cascade_of(two_readers[0]).info()


def test_auto_is_minilm_then_mpnet_and_a_cut_must_be_a_confidence():
    from qa.config import ConfigError, Settings
    from qa.readers import NAMED_READERS, reader_stages

    assert reader_stages("auto") == ["minilm", "mpnet"] and reader_stages("mpnet") == ["mpnet"]
    assert Settings(reader="auto").reader_path() == str(NAMED_READERS["minilm"])
    with pytest.raises(ConfigError, match="cascade_cut must be a confidence from 0 to 1"):
        Settings(cascade_cut=2.0)


def test_each_reader_reads_with_its_own_calibrated_early_exit_and_a_handed_in_reader_with_none(
        cascade_of, two_readers, article_index, embedder, tiny_reader):
    from qa import Assistant
    from qa.config import Settings

    first, second = two_readers
    calibration = json.loads((Path(first) / "calibration.json").read_text())
    (Path(first) / "calibration.json").write_text(json.dumps({**calibration, "early_exit_margin": -1e9}))
    try:
        assert cascade_of().exit_margins == [-1e9, None]
        exited = cascade_of(first).ask_many(QUESTIONS)
        full = cascade_of(first, early_exit_margin=float("inf")).ask_many(QUESTIONS)
        # exiting at any margin: every answer comes from the best passage, read alone
        assert all(a.citations and a.citations[0].start >= a.passages[0].passage.start and
                   a.citations[0].end <= a.passages[0].passage.end for a in exited)
        assert any(not _same(a, b) for a, b in zip(exited, full))
        assert all(a.text is not None for a in full)
    finally:
        (Path(first) / "calibration.json").write_text(json.dumps(calibration))
    assert Assistant(article_index, embedder, tiny_reader, Settings()).exit_margins == [None]
    assert Assistant(article_index, embedder, tiny_reader, Settings(early_exit_margin=4.0)).exit_margins == [4.0]
