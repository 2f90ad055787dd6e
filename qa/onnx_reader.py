"""The reader's ONNX Runtime engine: a question-answering model exported to ONNX once, optionally made int8.

A reader model folder (a whole model, or an adapter's merged model) is exported with ``torch.onnx.export``
into a cache folder keyed by the weights' digest: beside the merged weights for a merged adapter
(``<cache>/merged/<name>-<digest>/onnx/``), else ``<cache>/onnx/<name>-<sha256 of model.safetensors>/``.
It holds

* ``model.onnx``: float32, with ONNX Runtime's graph fusions (attention, layer norm, GELU) applied once;
* ``model-int8.onnx``: the same with dynamic int8 weights per output channel (``onnxruntime.quantization``),
  made only when asked for;
* ``EXPORTED.json``: what it was made from.

Set-up makes them ahead of time (``python -m qa.readers``, run by ``scripts/setup.sh``); a reader asked to run
on ONNX without them exports on first use, under a lock, and logs that it does. :class:`OnnxQAModel` runs a
session with the torch model's call surface reduced to what :class:`qa.reader.Reader` needs: int64 token
arrays in, float32 start and end logits out.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from qa.base_models import cache_root, locked, remembered_sha256

log = logging.getLogger(__name__)

# The runtimes a reader can run on; "auto" picks one per CPU and reader (qa.runtime.choose_runtime).
RUNTIMES = ("torch", "onnx", "onnx-int8")
FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
STAMP = "EXPORTED.json"
OPSET = 17
# Raised whenever export() or quantize() change what they make: older files are then made again.
FORMAT = 1


class OnnxError(RuntimeError):
    """A reader cannot be exported to ONNX or run by ONNX Runtime."""


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``), empty where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def cpu_has_vnni() -> bool:
    """True where the CPU multiplies int8 matrices natively (AVX-512 VNNI, AVX-VNNI or AMX)."""
    return bool(cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def onnxruntime_available() -> bool:
    """True when ONNX Runtime can be imported here."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def export_dir(model_folder: str | Path) -> Path:
    """The cache folder for a model folder's ONNX files, keyed by its weights.

    A model already in the cache (a merged adapter, whose folder name carries its digest) keeps them in its own
    ``onnx/``; any other folder's go to ``<cache>/onnx/<folder name>-<first 16 of the weights' sha256>``.
    """
    folder = Path(model_folder).resolve()
    root = cache_root().resolve()
    if root in folder.parents:
        return folder / "onnx"
    return root / "onnx" / f"{folder.name}-{remembered_sha256(folder / 'model.safetensors')[:16]}"


def onnx_file(model_folder: str | Path, runtime: str, make: bool = True) -> Path:
    """The ONNX file of ``runtime`` (``onnx`` or ``onnx-int8``) for a model folder, exported first if missing.

    Args:
        model_folder: a whole question-answering model folder (safetensors weights and tokenizer).
        runtime: ``onnx`` (float32) or ``onnx-int8``.
        make: export (and quantize) when the file is missing; with False a missing file raises.
    Raises:
        OnnxError: the export or the quantization failed, or the file is missing and ``make`` is False.
    """
    if runtime not in FILES:
        raise OnnxError(f"no ONNX file for the runtime {runtime!r}; ONNX runtimes: {', '.join(FILES)}")
    dest = export_dir(model_folder)
    path = dest / FILES[runtime]
    if path.is_file() and _stamp(dest).get("format") == FORMAT:
        return path
    if not make:
        raise OnnxError(f"{path} is missing: run `python -m qa.readers` to export the readers")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with locked(dest.parent / f".{dest.name}.lock"):
        if _stamp(dest).get("format") != FORMAT:  # made by an older exporter (or half-made): made again
            shutil.rmtree(dest, ignore_errors=True)
        if not (dest / FILES["onnx"]).is_file():
            export(model_folder, dest)
        if runtime == "onnx-int8" and not path.is_file():
            quantize(dest / FILES["onnx"], path)
    return path


def export(model_folder: str | Path, dest: Path) -> Path:
    """Export a question-answering model folder to ``dest/model.onnx`` (float32, graph fusions applied).

    Returns:
        The file written. Made under a temporary name and renamed, so a killed export leaves nothing half-made.
    Raises:
        OnnxError: the model cannot be loaded, traced or optimised.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering

    from qa.quiet import quiet_loading

    log.info("exporting the reader %s to ONNX (once; kept in %s)", model_folder, dest)
    dest.mkdir(parents=True, exist_ok=True)
    raw, final = dest / "model.raw.onnx.partial", dest / FILES["onnx"]
    try:
        with quiet_loading():
            # Eager attention traces to plain matrix products and softmax (ONNX Runtime's fusions do not make one
            # Attention op of them here; a fully fused graph measured no faster: docs/performance.md).
            model = AutoModelForQuestionAnswering.from_pretrained(
                str(model_folder), dtype=torch.float32, use_safetensors=True, trust_remote_code=False,
                attn_implementation="eager").eval()
        uses_types = getattr(model.config, "type_vocab_size", 0) > 1 \
            and "token_type_ids" in inspect.signature(model.forward).parameters
        names = ["input_ids", "attention_mask"] + (["token_type_ids"] if uses_types else [])
        sample = tuple(torch.ones((2, 16), dtype=torch.long) if n != "token_type_ids"
                       else torch.zeros((2, 16), dtype=torch.long) for n in names)
        axes = {n: {0: "batch", 1: "tokens"} for n in names} | {o: {0: "batch", 1: "tokens"}
                                                                for o in ("start_logits", "end_logits")}

        class Logits(torch.nn.Module):  # the two logits as a tuple, positional inputs in ``names``' order
            def __init__(self, inner) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, *args):
                out = self.inner(**dict(zip(names, args)), return_dict=True)
                return out.start_logits, out.end_logits

        trace(Logits(model), sample, names, ["start_logits", "end_logits"], axes, raw, final)
    except Exception as exc:  # noqa: BLE001 - any failure of the exporter is reported as one error
        raise export_error("reader", model_folder, exc) from exc
    finally:
        raw.unlink(missing_ok=True)
    (dest / STAMP).write_text(json.dumps({"format": FORMAT, "model": str(model_folder), "opset": OPSET,
                                          "inputs": names}, indent=1))
    return final


def trace(module, sample: tuple, names: list[str], outputs: list[str], axes: dict, raw: Path, final: Path) -> None:
    """Trace ``module`` (positional inputs ``names``) to ONNX at ``raw`` with the TorchScript exporter, batch and
    token axes dynamic, and save it with ONNX Runtime's graph optimisations to ``final``."""
    import torch

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer warnings
        torch.onnx.export(module, sample, str(raw), input_names=names, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    optimize(raw, final)


def export_error(what: str, model_folder: str | Path, exc: Exception) -> "OnnxError":
    """The one error an export's failure is reported as: what failed, on which folder, and the first line of why."""
    return OnnxError(f"could not export the {what} {model_folder} to ONNX ({exc.__class__.__name__}: "
                     f"{str(exc).splitlines()[0] if str(exc) else ''})")


def optimize(src: Path, dest: Path) -> None:
    """ONNX Runtime's extended graph optimisations (fusions that hold on every x86 CPU) saved to ``dest``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    tmp = dest.with_name(dest.name + ".partial")
    options.optimized_model_filepath = str(tmp)
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    os.replace(tmp, dest)


def quantize(src: Path, dest: Path) -> Path:
    """Dynamic int8 quantization of an exported model: int8 weights per output channel, activations at run time.

    Only the products with a weight matrix are quantized: the embedding tables (Gather) and the products of two
    activations stay in float32, which keeps the answers of the float32 model far more often.

    On a CPU without VNNI the weights use 7 bits (``reduce_range``), which ONNX Runtime advises there against
    overflow in its uint8 x int8 products.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    log.info("quantizing %s to int8 (once)", src)
    tmp = dest.with_name(dest.name + ".partial")
    quiet = _DropRecordsFrom("onnxruntime")  # its advice goes to the root logger, as warnings
    logging.getLogger().addFilter(quiet)
    try:
        import onnx

        # The fused graph's contrib ops (Attention, LayerNormalization...) have no inferred output types:
        # every float tensor of a reader is float32.
        quantize_dynamic(str(src), str(tmp), per_channel=True, reduce_range=not cpu_has_vnni(),
                         weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul", "Attention"],
                         nodes_to_exclude=activation_products(onnx.load(str(src))),
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    except Exception as exc:  # noqa: BLE001
        raise OnnxError(f"could not quantize {src} to int8 ({exc.__class__.__name__}: {exc})") from exc
    finally:
        logging.getLogger().removeFilter(quiet)
    os.replace(tmp, dest)
    info = _stamp(src.parent)
    (src.parent / STAMP).write_text(json.dumps({**info, "int8": {"per_channel": True,
                                                                 "reduce_range": not cpu_has_vnni()}}, indent=1))
    return dest


def _stamp(dest: Path) -> dict:
    """The ``EXPORTED.json`` of an export folder, or {} where it is missing or unreadable."""
    try:
        return json.loads((dest / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def activation_products(model) -> list[str]:
    """The MatMul nodes of an ONNX graph that multiply two activations (attention's query x key and weights x
    value): left in float32, since quantizing both sides at run time costs accuracy for little time."""
    weights = {init.name for init in model.graph.initializer}
    return [node.name for node in model.graph.node
            if node.op_type == "MatMul" and not any(name in weights for name in node.input)]


def remove_exports(model_folder: str | Path) -> None:
    """Delete a model folder's ONNX files (they are made again on demand)."""
    shutil.rmtree(export_dir(model_folder), ignore_errors=True)


class _DropRecordsFrom(logging.Filter):
    """Drops the log records made by one package's files (a library that logs to the root logger)."""

    def __init__(self, package: str) -> None:
        super().__init__()
        self.part = f"{os.sep}{package}{os.sep}"

    def filter(self, record: logging.LogRecord) -> bool:
        return self.part not in record.pathname


class OnnxQAModel:
    """An exported reader run by ONNX Runtime on the CPU.

    Attributes:
        runtime: ``onnx`` or ``onnx-int8``.
        path: the ONNX file.
        input_names: the inputs the graph takes (``token_type_ids`` only for models that use them).
    """

    def __init__(self, path: str | Path, runtime: str, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or _torch_threads()
        options.log_severity_level = 3  # errors only: its warnings go to stderr, not through logging
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime raises its own exception types
            raise OnnxError(f"ONNX Runtime cannot load {path} ({exc.__class__.__name__}); delete "
                            f"{Path(path).parent} and run `python -m qa.readers` to export it again") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.runtime = runtime
        self.path = Path(path)

    def logits(self, inputs: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Start and end logits, float32 (batch, tokens), for int64 token arrays keyed by input name."""
        start, end = self.session.run(["start_logits", "end_logits"],
                                      {name: inputs[name] for name in self.input_names})
        return start, end


def _torch_threads() -> int:
    """The thread count torch would use here (``OMP_NUM_THREADS``, else the cores this process may run on)."""
    explicit = os.environ.get("OMP_NUM_THREADS", "")
    if explicit.isdigit() and int(explicit) > 0:
        return int(explicit)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
