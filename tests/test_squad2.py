"""The SQuAD 2.0 split (one definition for training, calibration and reporting) and its benchmark's arithmetic."""

from __future__ import annotations

import math

import pytest

from qa.training.splits import CALIBRATION_ARTICLES, SQUAD2_DEV, articles, part_of

needs_squad2 = pytest.mark.skipif(not SQUAD2_DEV.is_file(), reason="SQuAD 2.0 dev is not in ../shared/qa-data")


def test_odd_articles_are_held_out_three_even_ones_calibrate_and_the_other_even_ones_train():
    assert [part_of(a) for a in range(8)] == ["calibration", "heldout", "calibration", "heldout", "calibration",
                                               "heldout", "train", "heldout"]
    assert CALIBRATION_ARTICLES == (0, 2, 4)
    parts = {p: articles(p, 35) for p in ("train", "calibration", "heldout")}
    assert parts["heldout"] == list(range(1, 35, 2)) and len(parts["train"]) == 15
    assert sorted(sum(parts.values(), [])) == list(range(35))
    with pytest.raises(ValueError, match="part must be one of"):
        articles("test", 35)


@needs_squad2
def test_every_question_of_the_dev_set_is_in_exactly_one_part_and_the_parts_keep_their_articles():
    from qa.training.splits import load_part

    parts = {p: load_part(p) for p in ("train", "calibration", "heldout")}
    assert sum(len(qs) for qs in parts.values()) == 11873
    assert len(parts["calibration"]) == 779 and sum(not q.golds for q in parts["calibration"]) == 379
    for part, questions in parts.items():
        assert {part_of(q.article) for q in questions} == {part}
    ids = [q.qid for qs in parts.values() for q in qs]
    assert len(ids) == len(set(ids))


@needs_squad2
def test_training_reads_only_the_training_articles_of_squad2():
    from qa.training.data import training_examples

    examples = training_examples("", None, 0, 1, 0.0, 0.0, squad2_part="train")
    assert len(examples) == 5142 and sum(e.answer_start < 0 for e in examples) == 2496
    assert {part_of(e.article - 100_000) for e in examples} == {"train"}
    for e in examples:
        if e.answer_start >= 0:
            assert e.context[e.answer_start:e.answer_start + len(e.answer_text)] == e.answer_text
    for part in ("heldout", "calibration"):
        with pytest.raises(ValueError, match="only the 'train' part"):
            training_examples("", None, 0, 1, 0.0, 0.0, squad2_part=part)


def _q(qid, golds):
    from qa.training.splits import Question

    return Question(qid, f"question {qid}", "context", tuple(golds), 0 if golds else -1, 1, "t")


def _p(best, margin, text="same"):
    from qa.training.squad2 import Prediction

    return Prediction(best if text == "same" else text, best, margin, 0.5)


def test_the_sample_is_seeded_per_kind_and_in_file_order():
    from qa.training.squad2 import sample

    questions = [_q(str(i), ["x"] if i % 3 else []) for i in range(30)]
    a = sample(questions, 5, 4, seed=1)
    assert a == sample(questions, 5, 4, seed=1) and a != sample(questions, 5, 4, seed=2)
    assert sum(bool(q.golds) for q in a) == 5 and sum(not q.golds for q in a) == 4
    assert [int(q.qid) for q in a] == sorted(int(q.qid) for q in a)
    assert len(sample(questions, None, None)) == 30


def test_the_report_counts_an_abstention_right_only_where_there_is_no_answer():
    from qa.training.squad2 import report

    questions = [_q("a", ["Tehran"]), _q("b", ["1979"]), _q("c", []), _q("d", [])]
    preds = [_p("Tehran", 3.0), _p("1979", -1.0, text=None), _p("Baghdad", 2.0), _p("x", -4.0, text=None)]
    r = report(questions, preds)
    assert r["f1"] == pytest.approx(50.0) and r["has_ans_f1"] == pytest.approx(50.0)
    assert r["unanswerable_refused"] == pytest.approx(50.0) and r["has_ans_answered"] == pytest.approx(50.0)


def test_the_threshold_maximises_squad2_f1_over_the_margins():
    from qa.training.squad2 import best_threshold

    questions = [_q("a", ["Tehran"]), _q("b", ["1979"]), _q("c", []), _q("d", []), _q("e", ["Iraq"])]
    preds = [_p("Tehran", 5.0), _p("1979", 1.0), _p("Baghdad", 3.0), _p("x", -2.0), _p("wrong", 4.0)]
    t = best_threshold(questions, preds)
    # answering down to 5.0: 1 + refusals 2 = 3; down to 1.0 adds 1979 but loses c and e's: 3; ties keep the highest
    assert t == 5.0
    everything_right = [_p("Tehran", 5.0), _p("1979", 4.0), _p("Baghdad", -3.0), _p("x", -4.0), _p("Iraq", 3.0)]
    assert best_threshold(questions, everything_right) == 3.0


def test_the_engine_margin_is_recovered_from_its_probabilities():
    from qa.training.squad2 import margin_of
    from qa.types import Answer, Candidate

    def cand(text, p):
        return Candidate(text, 0.0, p, None)

    # softmax over spans [2, 1] and no answer 0
    z = math.exp(2) + math.exp(1) + 1
    answer = Answer("q", None, 0.0, candidates=[cand("a", math.exp(2) / z), cand("b", math.exp(1) / z)])
    best, margin = margin_of(answer)
    assert best == "a" and margin == pytest.approx(2.0)
    assert margin_of(Answer("q", None, 0.0)) == ("", -math.inf)


def test_the_cascade_takes_the_slow_reader_where_the_fast_one_abstains_or_is_unsure_and_the_cut_maximises_f1():
    from qa.training.squad2 import Prediction, cascade, choose_cut

    questions = [_q("a", ["Tehran"]), _q("b", []), _q("c", ["1979"])]
    fast = [Prediction("Tehran", "Tehran", 4.0, 0.9), Prediction("Baghdad", "Baghdad", 1.0, 0.5),
            Prediction(None, "1980", -1.0, 0.7)]
    slow = [Prediction("Tehran", "Tehran", 4.0, 0.9), Prediction(None, "Baghdad", -3.0, 0.8),
            Prediction("1979", "1979", 2.0, 0.6)]
    preds, reread = cascade(fast, slow, 0.0)
    assert [p.text for p in preds] == ["Tehran", "Baghdad", "1979"] and reread == pytest.approx(1 / 3)
    preds, reread = cascade(fast, slow, 0.6)
    assert [p.text for p in preds] == ["Tehran", None, "1979"] and reread == pytest.approx(2 / 3)
    cut, rows = choose_cut(questions, fast, slow, [0.0, 0.6, 0.95])
    assert cut == 0.6 and [r["f1"] for r in rows] == [pytest.approx(66.67), 100.0, 100.0]


def test_early_exit_answers_from_the_first_passage_where_its_margin_reaches_the_exit_margin():
    from qa.training.squad2 import early_exit

    # full reads and first-passage reads of three questions, both without a threshold
    full = [_p("Tehran", 6.0), _p("1979", 1.0), _p("Baghdad", 0.5)]
    first = [_p("Tehran", 7.0), _p("1980", 3.0), _p("Basra", -1.0)]
    preds, exited = early_exit(full, first, threshold=0.8, exit_margin=2.5)
    assert [p.text for p in preds] == ["Tehran", "1980", None] and exited == pytest.approx(2 / 3)
    preds, exited = early_exit(full, first, threshold=0.8, exit_margin=5.0)
    assert [p.text for p in preds] == ["Tehran", "1979", None] and exited == pytest.approx(1 / 3)
    # an exit margin under the threshold still never answers below the threshold
    preds, _ = early_exit(full, first, threshold=4.0, exit_margin=0.0)
    assert [p.text for p in preds] == ["Tehran", None, None]


def test_the_exit_margin_is_the_lowest_that_keeps_f1_within_the_tolerance_of_the_full_read():
    from qa.training.squad2 import choose_exit

    questions = [_q("a", ["Tehran"]), _q("b", ["1979"]), _q("c", [])]
    full = [_p("Tehran", 6.0), _p("1979", 4.0), _p("Basra", -1.0)]
    first = [_p("Tehran", 7.0), _p("1980", 3.0), _p("Basra", 1.0)]
    margin, rows = choose_exit(questions, full, first, threshold=0.0, margins=[0.0, 2.0, 3.5, 8.0])
    # at 0 and 2 the first passage's wrong answers are taken; from 3.5 only "Tehran" exits, as right as the full read
    assert margin == 3.5
    assert [r["exited"] for r in rows] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0], abs=1e-3)
    assert [r["changed"] for r in rows] == [2, 1, 0, 0]
    assert choose_exit(questions, full, [_p("x", 9.0)] * 3, 0.0, [1.0, 2.0])[0] is None


def test_the_screen_margin_is_the_highest_that_keeps_f1_within_a_tenth_of_no_screening():
    import math

    from qa.training.squad2 import choose_screen

    f1 = {-math.inf: 64.59, -8.0: 64.59, -4.0: 64.46, -2.0: 64.71, -1.0: 64.57, 0.0: 64.18}
    assert choose_screen(f1) == -1.0
    assert choose_screen({**f1, -1.0: 64.40}) == -2.0
    assert choose_screen({-math.inf: 64.59, -2.0: 60.0}) is None
    assert choose_screen({-math.inf: 64.59}) is None


def test_calibration_takes_screen_margins_as_a_comma_separated_list():
    import argparse

    from qa.training.calibrate import parse_margins

    assert parse_margins("-8,-4, 0") == [-8.0, -4.0, 0.0]
    with pytest.raises(argparse.ArgumentTypeError, match="numbers separated by commas"):
        parse_margins("-8,minus four")


def test_calibration_runs_the_engine_at_each_screen_margin_with_the_chosen_threshold_and_exit(monkeypatch):
    import argparse
    import math

    from qa.training import calibrate, squad2

    calls = []
    f1 = {-math.inf: 64.59, -4.0: 64.46, -1.0: 64.57, 0.0: 64.18}

    def run(mode, part, reader, answerable, unanswerable, **settings):
        calls.append((mode, part, reader, settings["threshold"], settings["early_exit_margin"],
                      settings["screen_margin"]))
        # the same three questions each time; at -4 one answer is lost
        texts = ["Tehran", None if settings["screen_margin"] == -4.0 else "2011", None]
        return [], [squad2.Prediction(t, t or "", 1.0, 0.5) for t in texts], \
            {"f1": f1[settings["screen_margin"]], "has_ans_f1": 60.0, "unanswerable_refused": 70.0, "seconds": 1.0}

    monkeypatch.setattr(squad2, "run", run)
    args = argparse.Namespace(model="mpnet", screen_margins=[0.0, -4.0, -1.0], bf16=True, no_bf16=False)
    monkeypatch.setattr(calibrate, "use_bf16", lambda args: True)
    result = calibrate.choose_screening(args, threshold=1.03, exit_margin=1.03)
    assert result["screen_margin"] == -1.0
    assert [c[5] for c in calls] == [-math.inf, -4.0, -1.0, 0.0]
    assert all(c[:5] == ("engine", "calibration", "mpnet", 1.03, 1.03) for c in calls)
    assert result["screening"]["screener"].startswith("minilm (")
    assert [row["screen_margin"] for row in result["screening"]["rows"]] == ["-inf", -4.0, -1.0, 0.0]
    assert [row["changed"] for row in result["screening"]["rows"]] == [0, 1, 0, 0]
    no_exit = calibrate.choose_screening(args, threshold=1.03, exit_margin=None)
    assert no_exit["screen_margin"] is None
    with pytest.raises(SystemExit, match="has no screener"):
        calibrate.choose_screening(argparse.Namespace(model="minilm", screen_margins=[0.0]), 1.0, 1.0)
