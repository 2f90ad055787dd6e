"""The reader: windows over long passages, spans decoded from logits with exact character offsets."""

from __future__ import annotations

import numpy as np
import pytest

from qa.reader import Reader, ReaderError, best_pairs, word_edges


def test_best_pairs_picks_the_highest_start_plus_end_inside_the_context():
    start = np.array([9.0, 0.0, 5.0, 1.0, 0.0])
    end = np.array([9.0, 0.0, 0.0, 4.0, 0.0])
    context = np.array([False, True, True, True, True])  # token 0 is [CLS]: never part of an answer
    pairs = best_pairs(start, end, context, max_answer_tokens=30, n=3)
    assert pairs[0] == (2, 3, 9.0)
    assert all(s >= 1 and e >= s for s, e, _ in pairs)
    assert [p[2] for p in pairs] == sorted((p[2] for p in pairs), reverse=True)


def test_best_pairs_respects_the_maximum_answer_length():
    start = np.array([0.0, 10.0, 0.0, 0.0, 0.0])
    end = np.array([0.0, 0.0, 0.0, 0.0, 10.0])
    context = np.ones(5, dtype=bool)
    assert all(e - s < 2 for s, e, _ in best_pairs(start, end, context, max_answer_tokens=2, n=10))


def test_best_pairs_with_no_context_tokens_is_empty():
    assert best_pairs(np.zeros(3), np.zeros(3), np.zeros(3, dtype=bool), 30, 5) == []


def test_best_pairs_can_take_starts_and_ends_from_different_masks():
    start = np.array([0.0, 9.0, 8.0, 0.0])
    end = np.array([0.0, 0.0, 9.0, 8.0])
    starts_ok = np.array([False, True, False, False])
    ends_ok = np.array([False, False, False, True])
    assert [(s, e) for s, e, _ in best_pairs(start, end, starts_ok, 30, 5, ends_ok)] == [(1, 3)]


def test_word_edges_let_spans_start_and_end_only_on_whole_words():
    # [CLS] q [SEP] shi ##ite - led [SEP]: word ids None 0 None 0 0 1 2 None
    word_ids = [None, 0, None, 0, 0, 1, 2, None]
    context = np.array([False, False, False, True, True, True, True, False])
    starts_ok, ends_ok = word_edges(word_ids, context)
    assert starts_ok.tolist() == [False, False, False, True, False, True, True, False]
    assert ends_ok.tolist() == [False, False, False, False, True, True, True, False]


def test_no_span_ends_inside_a_word(tiny_reader):
    passage = "The Shiite-led government of Nouri al-Maliki met the Kurdistan Regional Government in Erbil."
    for span in tiny_reader.extract("Which sect leads the government?", [passage], top_k=20):
        before = passage[span.start - 1] if span.start else " "
        after = passage[span.end] if span.end < len(passage) else " "
        assert not (before.isalnum() and span.text[0].isalnum()), span.text
        assert not (after.isalnum() and span.text[-1].isalnum()), span.text


def test_token_spans_are_still_available_when_asked_for(tiny_reader_dir):
    reader = Reader.load(tiny_reader_dir, whole_words=False, n_best=50)
    passage = "The Shiite-led government of Nouri al-Maliki met the Kurdistan Regional Government in Erbil."
    spans = reader.extract("Which sect leads the government?", [passage], top_k=50)
    assert any(s.end < len(passage) and passage[s.end].isalnum() and s.text[-1].isalnum() for s in spans)


def test_spans_are_exact_slices_of_their_passages(tiny_reader):
    passages = ["Qassem Suleimani, the commander of the Quds Force, reports to Ayatollah Ali Khamenei.",
                "The Obama administration withdrew its forces at the end of 2011."]
    spans = tiny_reader.extract("Who commands the Quds Force?", passages, top_k=5)
    assert 1 <= len(spans) <= 5
    for span in spans:
        assert passages[span.passage_index][span.start:span.end] == span.text
        assert span.text.strip() == span.text and span.text
    assert [s.score for s in spans] == sorted((s.score for s in spans), reverse=True)


def test_a_passage_longer_than_one_window_is_read_in_strided_windows(tiny_reader_dir):
    reader = Reader.load(tiny_reader_dir, max_length=48, stride=16, n_best=20)
    passage = " ".join(f"Sentence number {i} mentions the city of Tabriz and its river." for i in range(40))
    enc = reader.tokenizer("Where?", passage, truncation="only_second", max_length=48, stride=16,
                           return_overflowing_tokens=True)
    assert len(enc["input_ids"]) > 5  # really several windows
    reading = reader.read("Where?", [passage], top_k=20)
    assert reading.spans
    for span in reading.spans:
        assert passage[span.start:span.end] == span.text
    # spans come from all over the passage, not only its first window
    assert max(s.end for s in reading.spans) > len(passage) // 4
    assert np.isfinite(reading.no_answer_score)


def test_read_many_equals_reading_one_question_at_a_time(tiny_reader):
    items = [("Who?", ["Alice met Bob in Paris.", "Carol stayed home."]), ("Where?", ["Bob lives in Rome."])]
    together = tiny_reader.read_many(items, top_k=3)
    for (q, ps), reading in zip(items, together):
        alone = tiny_reader.read(q, ps, top_k=3)
        assert [(s.text, s.passage_index, s.start) for s in alone.spans] == \
               [(s.text, s.passage_index, s.start) for s in reading.spans]
        assert alone.no_answer_score == pytest.approx(reading.no_answer_score, abs=1e-4)


EXIT_ITEMS = [("Who met Bob?", ["Alice met Bob in Paris.", "Carol stayed home.", "Dan flew to Oslo."]),
              ("Where does Bob live?", ["Bob lives in Rome.", "Rome is in Italy."]),
              ("What is one passage?", ["Only this one."])]


def _spans(reading):
    return [(s.text, s.passage_index, s.start, s.end, round(s.score, 3)) for s in reading.spans]


def test_early_exit_that_never_triggers_reads_exactly_what_the_full_read_does(tiny_reader):
    full = tiny_reader.read_many(EXIT_ITEMS, top_k=4)
    never = tiny_reader.read_many(EXIT_ITEMS, top_k=4, exit_margin=1e9)
    for a, b in zip(full, never):
        assert _spans(a) == _spans(b)
        assert a.no_answer_score == pytest.approx(b.no_answer_score, abs=1e-3)
        assert b.passages_read is None


def test_early_exit_that_always_triggers_reads_only_the_first_passage(tiny_reader):
    first_only = tiny_reader.read_many([(q, ps[:1]) for q, ps in EXIT_ITEMS], top_k=4)
    exited = tiny_reader.read_many(EXIT_ITEMS, top_k=4, exit_margin=float("-inf"))
    for a, b, (_, ps) in zip(first_only, exited, EXIT_ITEMS):
        assert _spans(a) == _spans(b)
        assert all(s.passage_index == 0 for s in b.spans)
        assert b.passages_read == (1 if len(ps) > 1 else None)


def test_early_exit_answers_from_the_first_passage_only_when_its_margin_reaches_the_exit_margin(tiny_reader):
    first_only = tiny_reader.read_many([(q, ps[:1]) for q, ps in EXIT_ITEMS], top_k=4)
    full = tiny_reader.read_many(EXIT_ITEMS, top_k=4)
    # An exit margin between the first passages' margins: the higher one exits, the lower one reads on.
    low, high = sorted(first_only[:2], key=lambda r: r.margin)
    mixed = tiny_reader.read_many(EXIT_ITEMS, top_k=4, exit_margin=(low.margin + high.margin) / 2)
    for alone, whole, got in zip(first_only[:2], full[:2], mixed[:2]):
        expected = alone if alone is high else whole
        assert _spans(got) == _spans(expected)


def test_merged_readings_keep_the_best_spans_and_the_lowest_no_answer_score():
    from qa.reader import Reading, Span, merge_readings

    first = Reading([Span("a", 3.0, 0, 0, 1, -1.0), Span("b", 1.0, 0, 2, 3, -1.0)], -1.0)
    rest = Reading([Span("c", 2.0, 0, 0, 1, -2.0), Span("d", 0.5, 1, 4, 5, -2.0)], -2.0)
    merged = merge_readings(first, rest, top_k=3)
    assert [(s.text, s.passage_index) for s in merged.spans] == [("a", 0), ("c", 1), ("b", 0)]
    assert merged.no_answer_score == -2.0


def test_bf16_autocast_gives_the_same_answers_as_fp32(tiny_reader_dir):
    passages = ["Qassem Suleimani, the commander of the Quds Force, is in control of the operation.",
                "Iran sent about 500 forces from the Revolutionary Guards Corps to Diyala province."]
    fp32 = Reader.load(tiny_reader_dir, use_bf16=False)
    bf16 = Reader.load(tiny_reader_dir, use_bf16=True)
    bf16.use_bf16 = True  # force autocast even on CPUs without native bf16, to compare the two paths
    a = fp32.extract("Who is in control?", passages, top_k=3)
    b = bf16.extract("Who is in control?", passages, top_k=3)
    assert a[0].text == b[0].text
    assert a[0].score == pytest.approx(b[0].score, abs=0.1)


def test_with_bf16_the_linear_weights_are_held_in_bf16_and_the_answers_are_those_of_autocast(tiny_reader_dir):
    """Autocast would cast each float32 weight to bf16 on every call; holding them in bf16 gives the same products."""
    import torch

    passages = ["Qassem Suleimani, the commander of the Quds Force, is in control of the operation.",
                "Iran sent about 500 forces from the Revolutionary Guards Corps to Diyala province."]
    held = Reader.load(tiny_reader_dir)
    casting = Reader.load(tiny_reader_dir)
    casting._hold_linears = lambda dtype: None  # autocast over float32 weights, as before
    for reader in (held, casting):
        reader.use_bf16 = True  # force autocast even on CPUs without native bf16
    a = held.read("Who is in control?", passages, top_k=5)
    b = casting.read("Who is in control?", passages, top_k=5)
    assert [(s.text, s.score) for s in a.spans] == [(s.text, s.score) for s in b.spans]
    assert a.no_answer_score == b.no_answer_score
    linears = [m for m in held.model.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(m.weight.dtype == torch.bfloat16 for m in linears)
    norms = [m for m in held.model.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norms and all(m.weight.dtype == torch.float32 for m in norms)  # autocast runs these in float32


def test_without_bf16_the_weights_stay_float32(tiny_reader_dir):
    import torch

    reader = Reader.load(tiny_reader_dir, use_bf16=False)
    reader.read("Who is in control?", ["Qassem Suleimani is in control of the operation."])
    assert all(p.dtype == torch.float32 for p in reader.model.parameters())


def test_empty_passage_list_gives_no_spans(tiny_reader):
    reading = tiny_reader.read("Anything?", [])
    assert reading.spans == [] and reading.margin == float("-inf")


def test_a_missing_model_folder_says_how_to_get_one(tmp_path):
    with pytest.raises(ReaderError, match="qa train-reader"):
        Reader.load(tmp_path / "nowhere")


def test_a_folder_without_weights_is_refused_with_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ReaderError, match="could not load the reader"):
        Reader.load(tmp_path)


def test_pickle_weights_are_never_loaded(tiny_reader_dir, tmp_path):
    import shutil

    import torch

    folder = tmp_path / "pickled"
    shutil.copytree(tiny_reader_dir, folder)
    state = {k: v for k, v in __import__("safetensors.torch", fromlist=["load_file"]).load_file(
        str(folder / "model.safetensors")).items()}
    (folder / "model.safetensors").unlink()
    torch.save(state, folder / "pytorch_model.bin")
    with pytest.raises(ReaderError):
        Reader.load(folder)


# ------------------------------------------------------------------------------------------------
# passage screening: read_many's ``screen`` chooses which passages past the first are read

def test_each_passages_margin_is_what_reading_it_alone_would_give(tiny_reader):
    for (q, ps), reading in zip(EXIT_ITEMS, tiny_reader.read_many(EXIT_ITEMS, top_k=4)):
        assert len(reading.passage_margins) == len(ps)
        for p, margin in zip(ps, reading.passage_margins):
            assert margin == pytest.approx(tiny_reader.read(q, [p], top_k=4).margin, abs=1e-3)
    assert tiny_reader.passage_margins(EXIT_ITEMS[:1])[0] == \
        pytest.approx(tiny_reader.read_many(EXIT_ITEMS[:1], top_k=4)[0].passage_margins, abs=1e-6)


def test_a_screen_that_keeps_some_passages_reads_exactly_those_with_the_first(tiny_reader):
    asked = []

    def last_only(pairs):
        asked.extend(pairs)
        return [[i == len(ps) - 1 for i in range(len(ps))] for _, ps in pairs]

    screened = tiny_reader.read_many(EXIT_ITEMS, top_k=4, exit_margin=1e9, screen=last_only)
    # only the questions that read on are screened, over their remaining passages
    assert asked == [(q, ps[1:]) for q, ps in EXIT_ITEMS if len(ps) > 1]
    for (q, ps), got in zip(EXIT_ITEMS, screened):
        subset = [ps[0], ps[-1]] if len(ps) > 1 else ps
        expected = tiny_reader.read(q, subset, top_k=4)
        position = {0: 0, 1: len(ps) - 1}
        assert [(s.text, position[s.passage_index], s.start) for s in expected.spans] == \
               [(s.text, s.passage_index, s.start) for s in got.spans]
        assert got.no_answer_score == pytest.approx(expected.no_answer_score, abs=1e-3)
        assert got.passages_read == (2 if len(ps) > 2 else None)
    assert screened[0].passage_margins[1] is None and screened[0].passage_margins[2] is not None


def test_a_screen_that_keeps_every_passage_is_the_full_read_and_one_that_keeps_none_the_first_passage(tiny_reader):
    full = tiny_reader.read_many(EXIT_ITEMS, top_k=4)
    kept = tiny_reader.read_many(EXIT_ITEMS, top_k=4, exit_margin=1e9,
                                 screen=lambda pairs: [[True] * len(ps) for _, ps in pairs])
    none = tiny_reader.read_many(EXIT_ITEMS, top_k=4, exit_margin=1e9,
                                 screen=lambda pairs: [[False] * len(ps) for _, ps in pairs])
    first_only = tiny_reader.read_many([(q, ps[:1]) for q, ps in EXIT_ITEMS], top_k=4)
    for a, b, c, d, (_, ps) in zip(full, kept, none, first_only, EXIT_ITEMS):
        assert _spans(a) == _spans(b) and b.passages_read is None
        assert _spans(c) == _spans(d) and c.passages_read == (1 if len(ps) > 1 else None)


def test_a_screen_must_give_one_verdict_per_remaining_passage(tiny_reader):
    with pytest.raises(ValueError, match="one verdict per remaining passage"):
        tiny_reader.read_many(EXIT_ITEMS, top_k=4, exit_margin=1e9, screen=lambda pairs: [[True] for _ in pairs])
