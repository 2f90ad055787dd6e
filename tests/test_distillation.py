"""Distillation: teacher outputs by character, kept in resumable shards, and a student trained on them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import REPO

TRAIN = REPO.parent / "shared" / "qa-data" / "squad-v1.1" / "train-v1.1.json"
needs_squad = pytest.mark.skipif(not TRAIN.exists(), reason="needs ../shared/qa-data/squad-v1.1/train-v1.1.json")


def _record(starts: dict[int, float], ends: dict[int, float], null: tuple[float, float], k: int = 4) -> dict:
    def pad(d: dict[int, float]):
        chars = np.full(k, -1, dtype=np.int32)
        logits = np.full(k, -np.inf, dtype=np.float16)
        for j, (c, v) in enumerate(d.items()):
            chars[j], logits[j] = c, v
        return chars, logits

    sc, sl = pad(starts)
    ec, el = pad(ends)
    return {"start_char": sc, "start_logit": sl, "end_char": ec, "end_logit": el,
            "null_start": np.float32(null[0]), "null_end": np.float32(null[1])}


def test_window_targets_put_the_teachers_scores_on_the_student_tokens_at_the_same_characters():
    from qa.training.teacher import window_targets

    # [CLS] question [SEP] "Qassem" "Sule" "imani" "leads" [SEP]; context "Qassem Suleimani leads"
    offsets = np.asarray([[-1, -1], [-1, -1], [-1, -1], [0, 6], [7, 11], [11, 16], [17, 22], [-1, -1]])
    record = _record(starts={0: 5.0, 7: 3.0, 8: 9.0}, ends={16: 6.0, 22: 1.0}, null=(1.0, 2.0))
    start, end = window_targets(record, offsets, temperature=1.0)
    assert start.sum() == pytest.approx(1.0) and end.sum() == pytest.approx(1.0)
    # char 8 starts no student token: its mass goes nowhere; "Qassem" (0) and "Sule" (7) and [CLS] share it
    expected = np.exp([1.0, 5.0, 3.0]) / np.exp([1.0, 5.0, 3.0]).sum()
    assert start[[0, 3, 4]] == pytest.approx(expected, rel=1e-5)
    assert start[[1, 2, 5, 6, 7]].sum() == 0
    assert int(np.argmax(end)) == 5 and end[6] > 0 and end[0] > 0  # "imani" ends at 16, "leads" at 22
    softer, _ = window_targets(record, offsets, temperature=4.0)
    assert softer.max() < start.max()  # a higher temperature spreads the mass


def test_a_window_without_the_teachers_answer_puts_everything_on_no_answer():
    from qa.training.teacher import window_targets

    offsets = np.asarray([[-1, -1], [30, 35], [36, 40]])
    start, end = window_targets(_record({0: 8.0}, {6: 8.0}, null=(-2.0, -2.0)), offsets, temperature=2.0)
    assert start[0] == 1.0 and end[0] == 1.0


def test_a_span_the_teacher_prefers_outside_the_window_counts_as_no_answer_in_it():
    from qa.training.teacher import window_targets

    # the window holds chars 30-40 ("leads" at 36); the teacher's best span starts at 0, outside it
    offsets = np.asarray([[-1, -1], [30, 35], [36, 40]])
    record = _record(starts={0: 8.0, 36: 5.0}, ends={6: 8.0, 40: 5.0}, null=(1.0, 1.0))
    start, end = window_targets(record, offsets, temperature=1.0)
    logits = np.exp([1.0, 8.0, 5.0])
    assert start[0] == pytest.approx((logits[0] + logits[1]) / logits.sum(), rel=1e-5)
    assert start[2] == pytest.approx(logits[2] / logits.sum(), rel=1e-5)
    assert end[0] > 0.9 and end[2] < 0.1 and start.sum() == pytest.approx(1.0)


def test_the_distillation_loss_is_zero_when_the_student_matches_the_teacher_and_skips_rows_without_one():
    import torch

    from qa.training.train import distillation_loss

    logits = torch.tensor([[1.0, 3.0, 0.5, 0.0], [0.0, 1.0, 2.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    temperature = 2.0
    p = torch.softmax((logits.masked_fill(mask == 0, -1e4)) / temperature, -1)
    has = torch.tensor([True, False])
    assert float(distillation_loss(logits, logits, mask, (p, p, has), temperature)) == pytest.approx(0.0, abs=1e-6)
    other = torch.tensor([[3.0, 1.0, 0.5, 0.0], [9.0, 9.0, 9.0, 9.0]])
    assert float(distillation_loss(other, other, mask, (p, p, has), temperature)) > 0.1
    # the second row has no teacher: changing its logits changes nothing
    again = other.clone()
    again[1] = torch.tensor([-5.0, 0.0, 5.0, 1.0])
    assert float(distillation_loss(again, again, mask, (p, p, has), temperature)) == pytest.approx(
        float(distillation_loss(other, other, mask, (p, p, has), temperature)))


@pytest.fixture()
def teacher_outputs(tmp_path, tiny_reader_dir):
    from qa.training.teacher import TeacherConfig, run

    cfg = TeacherConfig(teacher=str(tiny_reader_dir), out=str(tmp_path / "teacher"), train_file=str(TRAIN),
                        limit=12, seed=5, negative_fraction=0.5, removal_fraction=0.5, max_length=96, stride=32,
                        top_k=8, shard_size=5)
    return cfg, run(cfg)


@needs_squad
def test_teacher_outputs_come_in_shards_that_a_rerun_does_not_compute_again(teacher_outputs):
    from qa.training.teacher import load

    cfg, out = teacher_outputs
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["examples"] > 12  # the questions and their negatives
    assert manifest["shards"] == len(list(out.glob("shard-*.npz"))) == (manifest["examples"] + 4) // 5
    assert manifest["teacher"]["sha256"] and manifest["selection"]["seed"] == 5
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")}
    from qa.training.teacher import run

    run(cfg)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.npz")} == stamps
    records = load(out)
    assert len(records["key"]) == manifest["examples"]
    assert records["start_char"].shape == (manifest["examples"], 8)
    assert any(q.endswith("-del") for q in records["qid"])  # answer-deleted negatives have records too
    assert np.isfinite(records["start_logit"][:, 0].astype(np.float32)).all()  # every example has a best start


@needs_squad
def test_a_damaged_shard_is_computed_again_and_another_teachers_folder_is_refused(teacher_outputs, tmp_path):
    from qa.training.teacher import TeacherError, load, run

    cfg, out = teacher_outputs
    shard = out / "shard-00001.npz"
    good = shard.read_bytes()
    shard.write_bytes(good[:100])
    with pytest.raises(TeacherError, match="missing or damaged"):
        load(out)
    run(cfg)
    assert shard.read_bytes() == good
    cfg.top_k = 4
    with pytest.raises(TeacherError, match="another windowing"):
        run(cfg)


@needs_squad
def test_student_targets_from_the_same_tokenizer_agree_with_the_teachers_own_best_token(teacher_outputs,
                                                                                       tiny_reader):
    from transformers import AutoTokenizer

    from qa.training.data import featurize, training_examples
    from qa.training.teacher import TeacherTargets

    cfg, out = teacher_outputs
    examples = training_examples(cfg.train_file, cfg.limit, cfg.offset, cfg.seed, cfg.negative_fraction,
                                 cfg.removal_fraction)
    tokenizer = AutoTokenizer.from_pretrained(cfg.teacher)
    feats = featurize(examples, tokenizer, max_length=96, stride=32, keep_cut_fraction=1.0, with_offsets=True)
    targets = TeacherTargets.for_windows(out, examples, feats, temperature=1.0)
    assert (targets.rows >= 0).all()
    # a question that fits one window: the target's best start is the teacher's own best start token there
    one = next(i for i, ex in enumerate(examples)
               if (feats.example_index == i).sum() == 1 and ex.answer_start >= 0)
    w = int(np.flatnonzero(feats.example_index == one)[0])
    start, end, has = targets.batch([w], len(feats.input_ids[w]))
    assert has[0] and start[0].sum() == pytest.approx(1.0)
    enc = tiny_reader.tokenizer(examples[one].question.strip(), examples[one].context, truncation="only_second",
                                max_length=96, stride=32, return_overflowing_tokens=True,
                                return_offsets_mapping=True)
    s_log, e_log = tiny_reader.forward_windows(enc)
    context = np.asarray([s == 1 for s in enc.sequence_ids(0)])
    allowed = np.where(context, s_log[0], -np.inf)
    allowed[0] = s_log[0][0]
    assert int(np.argmax(start[0])) == int(np.argmax(allowed))


@needs_squad
def test_a_teacher_made_for_other_questions_is_refused_with_what_to_do(teacher_outputs, tmp_path):
    from transformers import AutoTokenizer

    from qa.training.data import featurize, training_examples
    from qa.training.teacher import TeacherError, TeacherTargets

    cfg, out = teacher_outputs
    examples = training_examples(cfg.train_file, 12, 100, cfg.seed, 0.0, 0.0)  # other questions
    feats = featurize(examples, AutoTokenizer.from_pretrained(cfg.teacher), 96, 32, with_offsets=True)
    with pytest.raises(TeacherError, match="the same --seed, --limit, --offset"):
        TeacherTargets.for_windows(out, examples, feats, temperature=2.0)


@pytest.fixture()
def other_tiny_dir(tmp_path, tiny_reader_dir):
    """Another randomly initialised tiny reader (same vocabulary, other weights): a student unlike the teacher."""
    import torch
    from transformers import AutoTokenizer, BertForQuestionAnswering

    torch.manual_seed(1)
    model = BertForQuestionAnswering(BertForQuestionAnswering.config_class.from_pretrained(tiny_reader_dir))
    model.save_pretrained(tmp_path / "student-base")
    AutoTokenizer.from_pretrained(tiny_reader_dir).save_pretrained(tmp_path / "student-base")
    return tmp_path / "student-base"


@needs_squad
def test_a_student_distilled_from_the_teacher_moves_towards_its_distributions(teacher_outputs, tmp_path,
                                                                             other_tiny_dir):
    from qa.reader import Reader
    from qa.training.train import TrainConfig, train

    cfg, out = teacher_outputs
    student = TrainConfig(train_file=cfg.train_file, base_model=str(other_tiny_dir), out=str(tmp_path / "student"),
                          limit=cfg.limit, offset=cfg.offset, seed=cfg.seed, negative_fraction=cfg.negative_fraction,
                          removal_fraction=cfg.removal_fraction, max_length=96, stride=32, keep_cut_fraction=1.0,
                          batch_size=8, lr=3e-3, epochs=20, warmup=0.1, save_every=1000, log_every=4, threads=0,
                          teacher=str(out), distil_weight=1.0, temperature=2.0, init_from="")
    final = train(student)
    history = [json.loads(line) for line in (tmp_path / "student" / "history.jsonl").read_text().splitlines()]
    assert all({"gold", "kl"} <= set(h) for h in history)
    assert history[-1]["kl"] < 0.5 * history[0]["kl"]  # the student learns the teacher's distributions
    assert Reader.load(final).read("Who met Bob?", ["Alice met Bob in Paris."]) is not None
