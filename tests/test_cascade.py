"""bench/cascade.py: the cascade of a fast and an accurate reader, computed from each reader's own answers.

The fast reader's answer stands where its confidence reaches the cut; elsewhere the accurate reader's answer is
taken and both readers' times are paid. The engine's per-question results carry the confidence it uses.
"""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from conftest import REPO


def _bench_cascade():
    """bench/cascade.py as a module (bench/ is not a package)."""
    if "bench_cascade" not in sys.modules:
        sys.path.insert(0, str(REPO / "bench"))
        spec = importlib.util.spec_from_file_location("bench_cascade", REPO / "bench" / "cascade.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_cascade"] = module
        spec.loader.exec_module(module)
    return sys.modules["bench_cascade"]


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


def test_the_fast_answer_stands_at_or_above_the_cut_and_the_accurate_reader_rereads_below_it():
    cascade = _bench_cascade().cascade
    results, reread = cascade(FAST, SLOW, 0.55)
    assert [r["prediction"] for r in results] == ["Tehran", "Qassem Suleimani", None, None]
    assert reread == pytest.approx(0.5)
    assert [r["seconds"] for r in results] == pytest.approx([0.1, 0.6, 0.1, 0.6])


def test_a_cut_of_zero_is_the_fast_reader_alone_and_a_cut_above_one_rereads_everything():
    cascade = _bench_cascade().cascade
    assert cascade(FAST, SLOW, 0.0) == (FAST, 0.0)
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
    assert [r["f1"] for r in rows] == [37.5, 100.0, 75.0]
    assert [r["unanswerable_answered"] for r in rows] == [1, 0, 0]
    assert rows[2]["reread"] == 0.5 and rows[2]["p50_ms"] == pytest.approx(350.0)
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
