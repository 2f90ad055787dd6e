"""Questions embedded on ONNX Runtime: the embedder's encoder exported once and used for short inputs.

A question is about a dozen tokens. At that size torch spends most of the embedder's time on the overhead of each
operation (about 10 ms a question on a 2-core CPU), where ONNX Runtime gives the same vector (to 1e-7) in about
3 ms (docs/performance.md). Set-up exports the encoder (``python -m qa.readers``) into the cache, beside the readers'
exports and keyed the same way by its weights (:func:`qa.onnx_reader.export_dir`); where the export is missing, or
ONNX Runtime is, the embedder stays on torch: nothing is exported when a question is asked.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from qa.base_models import locked

log = logging.getLogger(__name__)

FILE = "encoder.onnx"
STAMP = "ENCODER.json"
FORMAT = 1  # raised whenever export() changes what it makes


def encoder_file(model_folder: str | Path, make: bool = False) -> Path | None:
    """The exported encoder of an embedder folder: made first with ``make``, else None where it is missing.

    Raises:
        qa.onnx_reader.OnnxError: ``make`` and the export failed.
    """
    from qa.onnx_reader import export_dir

    dest = export_dir(model_folder)
    path = dest / FILE
    if path.is_file() and _stamp(dest).get("format") == FORMAT:
        return path
    if not make:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    with locked(dest.parent / f".{dest.name}.encoder.lock"):
        if not (path.is_file() and _stamp(dest).get("format") == FORMAT):
            export(model_folder, dest)
    return path


def export(model_folder: str | Path, dest: Path) -> Path:
    """Export an embedder folder's transformer (token ids -> last hidden states) to ``dest/encoder.onnx``.

    Raises:
        qa.onnx_reader.OnnxError: the model cannot be loaded, traced or optimised.
    """
    import torch
    from transformers import AutoModel

    from qa.onnx_reader import export_error, trace
    from qa.quiet import quiet_loading

    log.info("exporting the embedder %s to ONNX (once; kept in %s)", model_folder, dest)
    raw = dest / "encoder.raw.onnx.partial"
    try:
        with quiet_loading():
            model = AutoModel.from_pretrained(str(model_folder), dtype=torch.float32, use_safetensors=True,
                                              trust_remote_code=False, attn_implementation="eager").eval()
        names = ["input_ids", "attention_mask"] + (["token_type_ids"]
                                                   if getattr(model.config, "type_vocab_size", 0) > 0 else [])

        class Hidden(torch.nn.Module):  # positional inputs in ``names``' order -> last hidden states
            def __init__(self, inner) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *args):
                return self.inner(**dict(zip(names, args)), return_dict=True).last_hidden_state

        sample = tuple(torch.ones((2, 8), dtype=torch.long) if n != "token_type_ids"
                       else torch.zeros((2, 8), dtype=torch.long) for n in names)
        axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "hidden"]}
        trace(Hidden(model), sample, names, ["hidden"], axes, raw, dest / FILE)
    except Exception as exc:  # noqa: BLE001 - any failure of the exporter is reported as one error
        raise export_error("embedder", model_folder, exc) from exc
    finally:
        raw.unlink(missing_ok=True)
    (dest / STAMP).write_text(json.dumps({"format": FORMAT, "model": str(model_folder), "inputs": names}, indent=1))
    return dest / FILE


def prepare() -> Path | None:
    """Export the configured embedder's encoder (set-up: ``python -m qa.readers``); None where ONNX Runtime is
    missing or the embedder is not a plain mean-pooling model folder."""
    from qa.config import ConfigError, Settings, resolve_embedder
    from qa.embedding import mean_pooling_spec
    from qa.onnx_reader import onnxruntime_available

    try:
        path = resolve_embedder(Settings.from_env().embedder)
    except ConfigError:
        return None
    if not onnxruntime_available() or not Path(path).is_dir() or mean_pooling_spec(path) is None:
        return None
    return encoder_file(path, make=True)


def _stamp(dest: Path) -> dict:
    try:
        return json.loads((dest / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class OnnxEncoder:
    """An exported encoder run by ONNX Runtime: token arrays in, float32 last hidden states out."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # One thread: a question's dozen tokens gain nothing from more, and a pool of ONNX Runtime threads
        # spinning after each call takes the cores from the reader that runs next.
        options.intra_op_num_threads = threads
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def hidden(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Last hidden states (batch, tokens, dimension) for int64 token arrays keyed by input name."""
        return self.session.run(["hidden"], {n: np.asarray(inputs[n], dtype=np.int64) for n in self.input_names})[0]


def load(model_folder: str | Path) -> OnnxEncoder | None:
    """The embedder folder's exported encoder on ONNX Runtime, or None (no export, no ONNX Runtime, or a file it
    cannot load: the embedder then runs on torch)."""
    from qa.onnx_reader import export_dir, onnxruntime_available

    if not onnxruntime_available():
        return None
    try:
        path = encoder_file(model_folder)
    except OSError:  # an unreadable package folder: no digest, no export
        return None
    if path is None:
        log.debug("no ONNX export of the embedder in %s: queries run on torch", export_dir(model_folder))
        return None
    try:
        return OnnxEncoder(path)
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own exception types
        log.warning("ONNX Runtime cannot load %s (%s): questions are embedded on torch; delete %s and run "
                    "`python -m qa.readers` to export it again", path, exc.__class__.__name__, path.parent)
        return None
