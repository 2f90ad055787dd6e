"""How an exported reader is made int8: dynamic int8 where a product's input quantizes well, block-wise where not.

Dynamic int8 (``onnxruntime.quantization.quantize_dynamic``) quantizes the input of each product with a weight
matrix to uint8 with one scale per call. Some of a transformer's inputs (MPNet's feed-forward layers, after GELU)
have outlier channels and tokens, so one scale keeps little of the rest: `mpnet-4` in plain dynamic int8 changed
one best span in five. Those products are found by measurement: on sample windows of text, the relative error of
each input quantized to uint8 with one scale (:func:`input_errors`); where it exceeds :data:`HOT_ERROR` the product
uses ONNX Runtime's ``MatMulNBits`` with 8-bit weights and int8 arithmetic (``accuracy_level`` 4), which quantizes
the input per block of :data:`BLOCK` values of each token; the others keep dynamic int8 with per-channel weights.
Products of two activations (attention's) stay in float32 either way. Measurements: docs/performance.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

# A product whose input loses more than this (relative L2 error) to one uint8 scale is quantized block-wise.
HOT_ERROR = 0.05
BLOCK = 128
# Questions paired with the sample text's passages: the windows a reader sees are "question + passage".
SAMPLE_QUESTIONS = ("Who said it?", "When did it happen?", "Where did this take place?", "Why did they do it?",
                    "What is the name of the group?", "How many people were there?")
SAMPLE_WINDOWS = 16
FALLBACK_TEXT = (
    "The meeting took place in Geneva on Tuesday, officials said. Representatives of both governments discussed "
    "sanctions, trade and the security of the region for more than six hours. \"We made progress,\" the foreign "
    "minister told reporters afterwards, adding that a second round of talks would follow in March. Critics in "
    "parliament called the agreement a mistake and demanded a vote before it takes effect. "
) * 8


def weight_products(model) -> tuple[list, dict]:
    """The MatMul nodes of an ONNX graph whose second input is a weight matrix, and the graph's weights by name."""
    weights = {init.name: init for init in model.graph.initializer}
    nodes = [node for node in model.graph.node
             if node.op_type == "MatMul" and node.input[1] in weights and node.input[0] not in weights]
    return nodes, weights


def sample_text() -> str:
    """The text the sample windows come from: the shipped article, else a fixed paragraph of news prose."""
    from qa.config import DEFAULT_ARTICLE

    try:
        return Path(DEFAULT_ARTICLE).read_text(encoding="utf-8")
    except OSError:
        return FALLBACK_TEXT


def sample_feeds(tokenizer, input_names: list[str], text: str | None = None,
                 windows: int = SAMPLE_WINDOWS, max_length: int = 256) -> dict[str, np.ndarray]:
    """Token arrays for ``windows`` question + passage pairs cut from ``text`` (one padded batch).

    Args:
        tokenizer: the reader's tokenizer.
        input_names: the graph's inputs (``token_type_ids`` only where the model takes them).
        text: the passages' source (default :func:`sample_text`).
        windows: how many pairs.
        max_length: tokens a window holds.
    """
    words = (text or sample_text()).split()
    step = max(1, len(words) // windows)
    passages = [" ".join(words[i * step:(i + 1) * step][:180]) for i in range(windows)]
    questions = [SAMPLE_QUESTIONS[i % len(SAMPLE_QUESTIONS)] for i in range(windows)]
    enc = tokenizer(questions, passages, truncation="only_second", max_length=max_length, padding=True,
                    return_tensors="np")
    return {name: np.asarray(enc[name], dtype=np.int64) for name in input_names}


def uint8_error(values: np.ndarray) -> float:
    """Relative L2 error of ``values`` quantized to uint8 with one scale and zero point (as dynamic int8 does)."""
    low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
    if high == low:
        return 0.0
    scale = (high - low) / 255
    zero = np.round(-low / scale)
    restored = (np.clip(np.round(values / scale) + zero, 0, 255) - zero) * scale
    return float(np.linalg.norm(values - restored) / max(np.linalg.norm(values), 1e-12))


def input_errors(path: str | Path, feeds: dict[str, np.ndarray]) -> dict[str, float]:
    """Each weight product's :func:`uint8_error` of its input, window by window (the worst), keyed by node name."""
    import onnx
    import onnxruntime as ort
    from onnx import helper

    model = onnx.load(str(path))
    products, _ = weight_products(model)
    inputs = list(dict.fromkeys(node.input[0] for node in products))
    known = {out.name for out in model.graph.output}
    model.graph.output.extend(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
                              for name in inputs if name not in known)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    mask = feeds["attention_mask"].astype(bool)
    errors: dict[str, float] = {}
    for name, values in zip(inputs, session.run(inputs, feeds)):
        # one window at a time, its padding left out: the engine reads a question's windows in small batches
        errors[name] = max(uint8_error(values[w][mask[w]]) for w in range(values.shape[0]))
    return {node.name: errors[node.input[0]] for node in products}


def quantize(src: str | Path, dest: str | Path, feeds: dict[str, np.ndarray], reduce_range: bool,
             excluded: list[str]) -> dict:
    """Write ``dest``: ``src`` with block-wise int8 for its hot products and dynamic int8 for the other weight products.

    Args:
        src: a float32 ONNX reader.
        dest: where the int8 model goes (written whole; the caller renames it into place).
        feeds: sample windows for :func:`input_errors`.
        reduce_range: 7-bit weights for dynamic int8 (CPUs without VNNI).
        excluded: nodes left in float32 (the products of two activations).
    Returns:
        What was made: the block-wise products, their count and the error bar, for the export's stamp.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load(str(src))
    products, weights = weight_products(model)
    errors = input_errors(src, feeds)
    # block-wise needs at least one whole block of inputs per output
    hot = [node.name for node in products
           if errors[node.name] > HOT_ERROR and weights[node.input[1]].dims[0] >= BLOCK]
    log.info("int8: %d of %d products block-wise (input error over %.2f)", len(hot), len(products), HOT_ERROR)
    middle = Path(str(dest) + ".blockwise")
    try:
        if hot:
            from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

            quantizer = MatMulNBitsQuantizer(model, bits=8, block_size=BLOCK, is_symmetric=True, accuracy_level=4,
                                             nodes_to_exclude=sorted(set(excluded) | {n.name for n in products} -
                                                                     set(hot)))
            quantizer.process()
            quantizer.model.save_model_to_file(str(middle), use_external_data_format=False)
            src = middle
        quantize_dynamic(str(src), str(dest), per_channel=True, reduce_range=reduce_range,
                         weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Attention"], nodes_to_exclude=excluded,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    finally:
        if middle.exists():
            os.unlink(middle)
    return {"blockwise": hot, "blockwise_error_over": HOT_ERROR, "block": BLOCK}
