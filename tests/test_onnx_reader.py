"""The reader on ONNX Runtime: exported once into the cache, the same answers as torch, int8 on request.

Every test exports into its own cache folder (``QA_CACHE_DIR``), from the tiny 2-layer reader of conftest.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa import onnx_reader, runtime
from qa.config import ConfigError, Settings
from qa.onnx_reader import OnnxError, export_dir, onnx_file
from qa.reader import Reader
from qa.readers import NAMED_READERS

pytest.importorskip("onnxruntime")

QUESTION = "Who is the commander of the Quds Force?"
PASSAGES = ["Qassem Suleimani is the commander of the Quds Force, the foreign arm of the Revolutionary Guards.",
            "Iran and the United States share an enemy in the Islamic State.",
            "The Quds Force answers to the Supreme Leader, Ayatollah Ali Khamenei, and to no one else in Iran."]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))


def test_the_onnx_reader_gives_the_answers_of_the_torch_reader_in_float32(tiny_reader_dir):
    torch_reader = Reader.load(tiny_reader_dir, runtime="torch", use_bf16=False, n_best=5)
    onnx_reader_ = Reader.load(tiny_reader_dir, runtime="onnx", n_best=5)
    assert (torch_reader.runtime, onnx_reader_.runtime) == ("torch", "onnx")
    expected = torch_reader.read(QUESTION, PASSAGES)
    got = onnx_reader_.read(QUESTION, PASSAGES)
    assert [(s.passage_index, s.start, s.end) for s in got.spans] == \
        [(s.passage_index, s.start, s.end) for s in expected.spans]
    assert np.allclose([s.score for s in got.spans], [s.score for s in expected.spans], atol=1e-4)
    assert got.margin == pytest.approx(expected.margin, abs=1e-4)


def test_read_many_on_onnx_equals_reading_one_question_at_a_time(tiny_reader_dir):
    reader = Reader.load(tiny_reader_dir, runtime="onnx")
    items = [(QUESTION, PASSAGES), ("Who leads Iran?", PASSAGES[2:]), ("Anything?", [])]
    together = reader.read_many(items)
    for (question, passages), reading in zip(items, together):
        alone = reader.read(question, passages)
        assert [(s.start, s.end) for s in alone.spans] == [(s.start, s.end) for s in reading.spans]
        assert np.allclose([s.score for s in alone.spans], [s.score for s in reading.spans], atol=1e-4)


def test_int8_reads_with_the_same_decoding_and_a_smaller_file(tiny_reader_dir):
    reader = Reader.load(tiny_reader_dir, runtime="onnx-int8")
    assert reader.runtime == "onnx-int8" and not reader.use_bf16
    reading = reader.read(QUESTION, PASSAGES)
    assert reading.spans
    for span in reading.spans:
        assert PASSAGES[span.passage_index][span.start:span.end] == span.text
    folder = export_dir(tiny_reader_dir)
    assert (folder / "model-int8.onnx").stat().st_size < (folder / "model.onnx").stat().st_size
    assert json.loads((folder / "EXPORTED.json").read_text())["int8"]["per_channel"] is True


def test_the_export_is_made_once_and_kept_under_the_weights_digest(tiny_reader_dir, tmp_path):
    first = onnx_file(tiny_reader_dir, "onnx")
    made = first.stat().st_mtime_ns
    assert onnx_file(tiny_reader_dir, "onnx").stat().st_mtime_ns == made
    assert first.parent.parent == tmp_path / "cache" / "onnx"
    assert first.parent.name.startswith(f"{tiny_reader_dir.name}-")


def test_a_model_in_the_cache_keeps_its_export_beside_its_weights(tiny_reader_dir, tmp_path):
    import shutil

    merged = tmp_path / "cache" / "merged" / "reader-mpnet-0123456789abcdef"
    shutil.copytree(tiny_reader_dir, merged)
    assert export_dir(merged) == merged / "onnx"


def test_an_export_from_an_older_exporter_is_made_again(tiny_reader_dir):
    path = onnx_file(tiny_reader_dir, "onnx")
    stamp = path.parent / "EXPORTED.json"
    stamp.write_text(json.dumps({**json.loads(stamp.read_text()), "format": onnx_reader.FORMAT - 1}))
    again = onnx_file(tiny_reader_dir, "onnx")
    assert json.loads((again.parent / "EXPORTED.json").read_text())["format"] == onnx_reader.FORMAT


def test_a_missing_export_says_how_to_make_it(tiny_reader_dir):
    with pytest.raises(OnnxError, match="python -m qa.readers"):
        onnx_file(tiny_reader_dir, "onnx", make=False)


def test_a_damaged_export_is_a_reader_error_that_says_what_to_do(tiny_reader_dir):
    from qa.reader import ReaderError

    path = onnx_file(tiny_reader_dir, "onnx")
    path.write_bytes(b"not an onnx file")
    with pytest.raises(ReaderError, match="QA_RUNTIME=torch"):
        Reader.load(tiny_reader_dir, runtime="onnx")


@pytest.mark.parametrize("name, bf16, vnni, int8, expected", [
    ("minilm", False, True, set(), "onnx"),          # no native bf16: ONNX Runtime beats torch in float32
    ("minilm", True, True, set(), "torch"),          # bf16 autocast pays: torch
    ("mpnet", True, True, {"mpnet"}, "onnx-int8"),   # int8 kept the reader's F1 (measured on a VNNI CPU)
    ("mpnet", True, False, {"mpnet"}, "torch"),      # without VNNI, int8 (7-bit weights) was not measured
    ("mpnet", False, False, {"mpnet"}, "onnx"),
    ("mpnet", False, True, {"minilm"}, "onnx"),
])
def test_auto_picks_the_fastest_runtime_that_keeps_a_shipped_readers_accuracy(monkeypatch, name, bf16, vnni, int8,
                                                                             expected):
    import qa.reader

    monkeypatch.setattr(qa.reader, "bf16_pays", lambda: bf16)
    monkeypatch.setattr(onnx_reader, "cpu_has_vnni", lambda: vnni)
    monkeypatch.setattr(runtime, "INT8_READERS", frozenset(int8))
    assert runtime.choose_runtime("auto", name) == expected
    assert runtime.choose_runtime("auto", str(NAMED_READERS[name])) == expected
    assert runtime.choose_runtime("auto", name, use_bf16=False) == \
        ("onnx-int8" if name in int8 and vnni else "onnx")


def test_auto_runs_a_readers_own_folder_on_torch_and_exports_nothing(tiny_reader_dir, tmp_path):
    assert runtime.choose_runtime("auto", str(tiny_reader_dir)) == "torch"
    assert Reader.load(tiny_reader_dir, runtime="auto").runtime == "torch"
    assert not (tmp_path / "cache" / "onnx").exists()


def test_auto_is_torch_without_onnxruntime(monkeypatch):
    monkeypatch.setattr(onnx_reader, "onnxruntime_available", lambda: False)
    assert runtime.choose_runtime("auto", "minilm") == "torch"


def test_a_named_runtime_is_taken_as_it_is():
    for name in ("torch", "onnx", "onnx-int8"):
        assert runtime.choose_runtime(name, "mpnet") == name


def test_the_runtime_setting_is_checked(monkeypatch):
    assert Settings().runtime == "auto"
    monkeypatch.setenv("QA_RUNTIME", "onnx-int8")
    assert Settings.from_env().runtime == "onnx-int8"
    with pytest.raises(ConfigError, match="runtime must be one of auto, torch, onnx, onnx-int8"):
        Settings(runtime="gpu")


def test_the_assistant_reads_with_the_configured_runtime(tiny_reader_dir, saved_index):
    from qa.assistant import Assistant

    on_torch = Assistant.load(saved_index, reader=str(tiny_reader_dir), runtime="torch", use_bf16=False)
    on_onnx = Assistant.load(saved_index, reader=str(tiny_reader_dir), runtime="onnx")
    assert (on_torch.reader.runtime, on_onnx.reader.runtime) == ("torch", "onnx")
    a, b = on_torch.ask(QUESTION), on_onnx.ask(QUESTION)
    assert (a.text, [c.start for c in a.citations]) == (b.text, [c.start for c in b.citations])


def test_the_weights_digest_that_keys_an_export_is_remembered_until_the_file_changes(tiny_reader_dir, tmp_path,
                                                                                    monkeypatch):
    import shutil

    from qa import base_models

    folder = tmp_path / "reader-copy"
    shutil.copytree(tiny_reader_dir, folder)
    first = export_dir(folder)
    hash_file = base_models.sha256_file
    monkeypatch.setattr(base_models, "sha256_file", lambda path: pytest.fail("hashed again"))
    assert export_dir(folder) == first  # remembered: not hashed at every start
    monkeypatch.setattr(base_models, "sha256_file", hash_file)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")  # another file: another digest, another export folder
    assert export_dir(folder) != first and export_dir(folder).parent == first.parent
