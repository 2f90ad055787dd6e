"""Teacher outputs for distillation: a reader's start/end scores over SQuAD train, by character, in shards.

The student (the MiniLM) and the teacher (the MPNet reader) tokenise differently, so the teacher's scores are
kept by character of the context, not by token. For every training example (the questions and their paired and
answer-deleted negatives, selected exactly as ``qa train-reader`` selects them) a record holds:

* the ``top_k`` best *start characters* (the first character of a context token) with the teacher's start logit,
  and the ``top_k`` best *end characters* (one past a token's last character) with its end logit; where a
  context spans several teacher windows, the highest logit of any window;
* the no-answer logits: the [CLS] position's start and end logits of the window where the teacher was surest
  that there is an answer (the lowest [CLS] score, as the reader decodes).

A student window maps each of its tokens to the teacher's logit at the same character (:func:`window_targets`):
the teacher's distribution restricted to what the window holds, the no-answer position included.

Outputs go to ``--out`` (outside git, e.g. ``runs/teacher-mpnet-2``): shards of ``--shard-size`` examples
(``shard-00000.npz``, ...), each written whole or not at all, and ``manifest.json``, which names the teacher (the
sha256 of its weights), the windowing and the example selection, and the sha256 of every finished shard. A rerun
computes only the shards that are missing or damaged and refuses a folder made by another teacher or selection.

Run::

    python -m qa.training.teacher --teacher mpnet --out runs/teacher-mpnet-2 [--bf16] [--limit N --seed S]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.base_models import sha256_file
from qa.config import SHARED_DIR
from qa.training import add_config_options
from qa.training.data import SELECTION, Example, Features, selected_examples

log = logging.getLogger(__name__)
FORMAT = 1
MANIFEST = "manifest.json"


class TeacherError(RuntimeError):
    """Teacher outputs that cannot be used as asked (another teacher or selection, missing, damaged)."""


@dataclass
class TeacherConfig:
    """What determines a folder of teacher outputs (saved in its manifest; a rerun must match it)."""

    teacher: str = "mpnet"
    out: str = "runs/teacher"
    train_file: str = str(SHARED_DIR / "qa-data" / "squad-v1.1" / "train-v1.1.json")
    limit: int | None = None
    offset: int = 0
    seed: int = 13
    negative_fraction: float = 0.15
    removal_fraction: float = 0.2
    swap_fraction: float = 0.0
    squad2_part: str = ""
    max_length: int = 384
    stride: int = 128
    top_k: int = 20
    shard_size: int = 2000
    bf16: bool = False
    threads: int = 0

    def selection(self) -> dict:
        """The fields that decide which examples there are (a student run must use the same to find them)."""
        return {k: getattr(self, k) for k in SELECTION}


def example_key(ex: Example) -> int:
    """A 32-bit checksum of an example's question and context: a record is used only for the same text."""
    return zlib.crc32(f"{ex.question.strip()}\x00{ex.context}".encode("utf-8"))


def teacher_checksum(folder: str | Path) -> str:
    """sha256 identifying a reader's weights: a whole model's ``model.safetensors``, or an adapter with its base."""
    from qa.readers import adapter_digest, is_adapter

    folder = Path(folder)
    if is_adapter(folder):
        return adapter_digest(folder)
    return sha256_file(folder / "model.safetensors")


def score_examples(reader, examples: list[Example], top_k: int) -> dict[str, np.ndarray]:
    """The teacher's records for ``examples`` (arrays with one row per example).

    Args:
        reader: a :class:`qa.reader.Reader` (its tokenizer, windowing and model).
        examples: questions over contexts.
        top_k: start and end characters kept per example.
    Returns:
        ``qid`` (the example's id), ``key`` (uint32, :func:`example_key`), ``start_char``/``end_char`` (int32, ``(n, top_k)``, -1 padding),
        ``start_logit``/``end_logit`` (float16, ``-inf`` padding), ``null_start``/``null_end`` (float32).
    """
    n = len(examples)
    out = {
        "qid": np.asarray([e.qid for e in examples], dtype=str),
        "key": np.asarray([example_key(e) for e in examples], dtype=np.uint32),
        "start_char": np.full((n, top_k), -1, dtype=np.int32),
        "start_logit": np.full((n, top_k), -np.inf, dtype=np.float16),
        "end_char": np.full((n, top_k), -1, dtype=np.int32),
        "end_logit": np.full((n, top_k), -np.inf, dtype=np.float16),
        "null_start": np.zeros(n, dtype=np.float32),
        "null_end": np.zeros(n, dtype=np.float32),
    }
    if not examples:
        return out
    enc = reader.encode([e.question.strip() for e in examples], [e.context for e in examples])
    start_logits, end_logits = reader.forward_windows(enc)
    starts: list[dict[int, float]] = [{} for _ in examples]
    ends: list[dict[int, float]] = [{} for _ in examples]
    nulls = [float("inf")] * n
    for w, i in enumerate(enc["overflow_to_sample_mapping"]):
        seq = enc.sequence_ids(w)
        s_log, e_log = start_logits[w][: len(seq)], end_logits[w][: len(seq)]
        null = float(s_log[0] + e_log[0])
        if null < nulls[i]:
            nulls[i] = null
            out["null_start"][i], out["null_end"][i] = float(s_log[0]), float(e_log[0])
        for t, (sid, (a, b)) in enumerate(zip(seq, enc["offset_mapping"][w])):
            if sid != 1 or b <= a:
                continue
            if s_log[t] > starts[i].get(a, -np.inf):
                starts[i][a] = float(s_log[t])
            if e_log[t] > ends[i].get(b, -np.inf):
                ends[i][b] = float(e_log[t])
    for i in range(n):
        for name, scores in (("start", starts[i]), ("end", ends[i])):
            best = sorted(scores.items(), key=lambda kv: -kv[1])[:top_k]
            for j, (char, logit) in enumerate(best):
                out[f"{name}_char"][i, j] = char
                out[f"{name}_logit"][i, j] = logit
    return out


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def run(cfg: TeacherConfig) -> Path:
    """Compute the missing shards of teacher outputs for ``cfg`` and return the folder.

    Raises:
        TeacherError: the folder holds outputs of another teacher, windowing or selection.
    """
    import torch

    from qa.reader import Reader
    from qa.readers import reader_folder, reader_name

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    folder = reader_folder(cfg.teacher)
    examples = selected_examples(cfg)
    shards = (len(examples) + cfg.shard_size - 1) // cfg.shard_size
    header = {
        "format": FORMAT,
        "teacher": {"name": reader_name(cfg.teacher), "folder": folder, "sha256": teacher_checksum(folder)},
        "windowing": {"max_length": cfg.max_length, "stride": cfg.stride, "top_k": cfg.top_k},
        "selection": cfg.selection(),
        "examples": len(examples),
        "shard_size": cfg.shard_size,
        "shards": shards,
    }
    manifest_path = out / MANIFEST
    done: dict[str, str] = {}
    if manifest_path.exists():
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        differ = [k for k in header if k != "teacher" and old.get(k) != header[k]]
        if old.get("teacher", {}).get("sha256") != header["teacher"]["sha256"]:
            differ.insert(0, "teacher")
        if differ:
            raise TeacherError(f"{out} holds teacher outputs with another {', '.join(differ)}; give another --out "
                               "or delete that folder")
        done = old.get("done", {})

    def save_manifest() -> None:
        _write_json(manifest_path, {**header, "config": asdict(cfg), "done": done})

    save_manifest()

    reader = Reader.load(folder, max_length=cfg.max_length, stride=cfg.stride, use_bf16=cfg.bf16, batch_size=32)
    started, computed = time.time(), 0
    for k in range(shards):
        path = out / f"shard-{k:05d}.npz"
        if path.name in done and path.exists() and sha256_file(path) == done[path.name]:
            continue
        if path.name in done:
            log.warning("%s is missing or damaged; computing it again", path)
        part = examples[k * cfg.shard_size : (k + 1) * cfg.shard_size]
        records = score_examples(reader, part, cfg.top_k)
        tmp = path.with_name(path.stem + ".tmp.npz")
        np.savez(tmp, **records)
        os.replace(tmp, path)
        done[path.name] = sha256_file(path)
        save_manifest()
        computed += len(part)
        rate = computed / (time.time() - started)
        log.info("shard %d/%d: %d examples, %.1f examples/s", k + 1, shards, len(part), rate)
    log.info("teacher outputs complete in %s: %d examples in %d shards", out, len(examples), shards)
    return out


def softmax_targets(logits: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(logits / T) over the finite entries; ``-inf`` entries get probability 0."""
    finite = np.isfinite(logits)
    probs = np.zeros(logits.shape, dtype=np.float32)
    if not finite.any():
        return probs
    scaled = logits[finite].astype(np.float64) / temperature
    scaled = np.exp(scaled - scaled.max())
    probs[finite] = scaled / scaled.sum()
    return probs


def window_targets(record: dict[str, np.ndarray], offsets: np.ndarray, temperature: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's softened start and end distributions over one student window.

    Pure function. The teacher's distribution is taken over its no-answer logit and all its kept characters,
    softened by ``temperature``. A context token whose first character is one of the teacher's start
    characters takes that character's probability, one whose end is one of its end characters that end
    probability. Position 0 (the student's [CLS], "no answer in this window") takes the no-answer probability
    **plus that of every kept character outside the window**: a span the teacher prefers elsewhere in the
    paragraph means no answer here, as the gold labels of the student's windows say. A character inside the
    window that begins or ends no student token is dropped; the rest is renormalised.

    Args:
        record: one example's record (``start_char``, ``start_logit``, ``end_char``, ``end_logit`` rows and
            ``null_start``, ``null_end`` scalars).
        offsets: the window's ``(tokens, 2)`` character spans, ``-1`` outside the context.
        temperature: the softening.
    Returns:
        Two float32 arrays of the window's length, each summing to 1.
    """
    context = [(int(a), int(b)) for a, b in offsets if a >= 0 and b > a]
    lo = min((a for a, _ in context), default=0)
    hi = max((b for _, b in context), default=0)
    starts = {int(a): t for t, (a, b) in enumerate(offsets) if a >= 0 and b > a}
    ends = {int(b): t for t, (a, b) in enumerate(offsets) if a >= 0 and b > a}

    def one(chars: np.ndarray, logits: np.ndarray, null: float, where: dict[int, int], inside) -> np.ndarray:
        kept = [(int(c), float(v)) for c, v in zip(chars, logits) if c >= 0]
        probs = softmax_targets(np.asarray([null] + [v for _, v in kept], dtype=np.float64), temperature)
        out = np.zeros(len(offsets), dtype=np.float64)
        out[0] = probs[0]
        for (c, _), p in zip(kept, probs[1:]):
            if not inside(c):
                out[0] += p
            elif c in where:
                out[where[c]] += p
        return (out / out.sum()).astype(np.float32)

    start = one(record["start_char"], record["start_logit"], float(record["null_start"]), starts,
                lambda c: lo <= c < hi)
    end = one(record["end_char"], record["end_logit"], float(record["null_end"]), ends, lambda c: lo < c <= hi)
    return start, end


class TeacherTargets:
    """A training run's windows with their teacher's soft targets (built per batch, from character records)."""

    def __init__(self, records: dict[str, np.ndarray], rows: np.ndarray, offsets: list[np.ndarray],
                 temperature: float) -> None:
        self.records = records
        self.rows = rows  # per window: its record's row, or -1 when the teacher has none for its example
        self.offsets = offsets
        self.temperature = temperature

    @classmethod
    def for_windows(cls, folder: str | Path, examples: list[Example], feats: Features, temperature: float,
                    min_coverage: float = 0.9) -> "TeacherTargets":
        """Match a run's windows (``featurize(..., with_offsets=True)``) to the teacher outputs in ``folder``.

        Raises:
            TeacherError: the folder is incomplete or damaged, or its records cover fewer than ``min_coverage``
                of the windows (another selection: make them with this run's ``--seed --limit --offset``).
        """
        records = load(folder)
        index = {(str(q), int(k)): i for i, (q, k) in enumerate(zip(records["qid"], records["key"]))}
        ex_rows = np.asarray([index.get((e.qid, example_key(e)), -1) for e in examples], dtype=np.int64)
        rows = ex_rows[feats.example_index]
        coverage = float((rows >= 0).mean()) if len(rows) else 1.0
        log.info("teacher outputs cover %.1f%% of the %d windows (%d of %d examples)", 100 * coverage, len(rows),
                 int((ex_rows >= 0).sum()), len(examples))
        if coverage < min_coverage:
            raise TeacherError(f"the teacher outputs in {folder} cover only {100 * coverage:.1f}% of this run's "
                               "windows: make them for this run's questions (the same --seed, --limit, --offset, "
                               "--negative-fraction and --removal-fraction)")
        return cls(records, rows, feats.char_offsets, temperature)

    def batch(self, idx: list[int], width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Start and end targets ``(len(idx), width)`` (zero on padding) and which rows have a teacher."""
        start = np.zeros((len(idx), width), dtype=np.float32)
        end = np.zeros((len(idx), width), dtype=np.float32)
        has = np.zeros(len(idx), dtype=bool)
        for r, i in enumerate(idx):
            row = self.rows[i]
            if row < 0:
                continue
            record = {k: self.records[k][row] for k in ("start_char", "start_logit", "end_char", "end_logit",
                                                         "null_start", "null_end")}
            s, e = window_targets(record, self.offsets[i], self.temperature)
            start[r, : len(s)], end[r, : len(e)] = s, e
            has[r] = True
        return start, end, has


def load(folder: str | Path) -> dict[str, np.ndarray]:
    """Every record of a finished folder of teacher outputs (the arrays of :func:`score_examples`, concatenated).

    Raises:
        TeacherError: no manifest, a shard missing or not matching its checksum.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TeacherError(f"no teacher outputs in {folder} ({exc}): make them with "
                           f"`python -m qa.training.teacher --out {folder}`") from None
    missing = [f"shard-{k:05d}.npz" for k in range(manifest["shards"])
               if f"shard-{k:05d}.npz" not in manifest.get("done", {})]
    if missing:
        raise TeacherError(f"the teacher outputs in {folder} are not finished ({len(missing)} of "
                           f"{manifest['shards']} shards to do): rerun the command in its manifest.json")
    parts = []
    for k in range(manifest["shards"]):
        path = folder / f"shard-{k:05d}.npz"
        if not path.exists() or sha256_file(path) != manifest["done"][path.name]:
            raise TeacherError(f"{path} is missing or damaged: rerun the command in {folder / MANIFEST} "
                               "to compute it again")
        with np.load(path) as data:
            parts.append({key: data[key] for key in data.files})
    records = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    if len(records["key"]) != manifest["examples"]:
        raise TeacherError(f"{folder} holds {len(records['key'])} records for {manifest['examples']} examples")
    return records


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qa.training.teacher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_config_options(parser, TeacherConfig())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    try:
        run(TeacherConfig(**vars(args)))
    except TeacherError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
