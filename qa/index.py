"""The on-disk index: FAISS vectors + passages + sources + manifest; atomic save, checked load.

Layout of an index directory::

    manifest.json     format version, embedder name and dimension, chunking, FAISS kind,
                      per-source title/origin/checksum/passage count/time added,
                      and the SHA-256 of every other file
    passages.json     [{"source_id", "start", "end"}, ...]  (text = source text[start:end])
    sources/ID.txt    each source's full text, the text all offsets refer to
    vectors.faiss     the FAISS index, row i = passage i

No pickle anywhere: JSON, UTF-8 text, and FAISS's own format. ``save`` builds the whole directory
beside the target and swaps it in with renames under a lock, so a crash during a build leaves the
previous index as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.types import Passage, Source, content_id

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
# Up to this many passages the index is exact (flat inner product); above it, HNSW. Flat search costs about
# 16 ms per query at 100k passages on 2 cores (bench/scale.py), so exact stays under the 20 ms target to here.
EXACT_LIMIT = 100_000
HNSW_EF_SEARCH = 512  # recall@10 0.967 at 1M, p50 3.6 ms (256: 0.932); 0.989 at 100k with 256. bench/scale.py


class IndexFileError(RuntimeError):
    """The index is missing, corrupt or does not match the configuration."""




def _rebuild_hint(path: Path) -> str:
    return f"rebuild it with `qa index build SOURCES... --index {path}`"


@dataclass
class Index:
    """Sources, their passages and one vector per passage.

    Attributes:
        sources: by id, in insertion order.
        passages: row i of the vectors belongs to passages[i].
        vectors: FAISS index over unit vectors (inner product).
        embedder: the embedder's name; dimension: its vector size.
        chunking: the chunking parameters the passages were made with.
        manifest: the manifest as loaded or last saved.
    """

    sources: dict[str, Source]
    passages: list[Passage]
    vectors: object
    embedder: str
    dimension: int
    chunking: dict = field(default_factory=dict)
    manifest: dict = field(default_factory=dict)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.passages)

    def passage_counts(self) -> dict[str, int]:
        counts = {sid: 0 for sid in self.sources}
        for p in self.passages:
            counts[p.source_id] += 1
        return counts

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows by inner product for each query row: (scores, ids); ids are -1 past the end."""
        k = max(1, min(k, len(self.passages)))
        if not self.passages:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.vectors.search(np.ascontiguousarray(queries, dtype=np.float32), k)


def make_faiss(vectors: np.ndarray, exact_limit: int = EXACT_LIMIT):
    """Choose and fill a FAISS index by corpus size: exact (IndexFlatIP) up to ``exact_limit`` rows, HNSW above.

    Args:
        vectors: (n, d) float32 unit vectors.
        exact_limit: largest corpus searched exactly.
    Returns:
        A FAISS index holding ``vectors`` in row order.
    """
    import faiss

    n, dim = vectors.shape
    if n <= exact_limit:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = HNSW_EF_SEARCH
    if n:
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def write_lock(path: Path, wait: float = 0.0):
    """Hold an exclusive lock for writing the index at ``path``.

    Raises:
        IndexFileError: another writer holds it (after ``wait`` seconds).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    lock_path = path.parent / f".{path.name}.lock"
    with open(lock_path, "w") as handle:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise IndexFileError(f"another process is writing the index at {path}; try again when it is done") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save(index: Index, path: str | Path, *, lock: bool = True) -> Path:
    """Write ``index`` to ``path`` atomically (build beside it, then swap in with renames).

    Raises:
        IndexFileError: another writer holds the lock, or writing failed (the old index is untouched).
    """
    path = Path(path)
    ctx = write_lock(path) if lock else contextlib.nullcontext()
    with ctx:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.new-", dir=path.parent))
        except OSError as exc:
            raise IndexFileError(f"could not write the index ({exc}); the previous index at {path} is unchanged: "
                                 "free disk space or fix the folder's permissions, and run the build again") from None
        try:
            _write(index, tmp)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, (OSError, RuntimeError)):
                raise IndexFileError(f"could not write the index ({exc}); the previous index at {path} is unchanged "
                                     "and still loads: free disk space (or fix the cause) and run the build "
                                     "again") from None
            raise
        _swap_in(tmp, path)
    index.path = path
    return path


def _write(index: Index, folder: Path) -> None:
    import faiss

    (folder / "sources").mkdir()
    counts = index.passage_counts()
    sources_meta = []
    for sid, src in index.sources.items():
        file = folder / "sources" / f"{sid}.txt"
        file.write_text(src.text, encoding="utf-8", newline="")
        sources_meta.append({**src.meta(), "checksum": hashlib.sha256(src.text.encode("utf-8")).hexdigest(),
                             "passages": counts.get(sid, 0), "chars": len(src.text)})
    (folder / "passages.json").write_text(
        json.dumps([{"source_id": p.source_id, "start": p.start, "end": p.end} for p in index.passages]),
        encoding="utf-8")
    faiss.write_index(index.vectors, str(folder / "vectors.faiss"))
    files = {name: _sha256(folder / name) for name in ("passages.json", "vectors.faiss")}
    manifest = {
        "format_version": FORMAT_VERSION,
        "embedder": {"name": index.embedder, "dimension": index.dimension},
        "chunking": index.chunking,
        "faiss": type(index.vectors).__name__,
        "passages": len(index.passages),
        "sources": sources_meta,
        "files": files,
        "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    for file in folder.rglob("*"):
        if file.is_file():
            with open(file, "rb") as handle:
                os.fsync(handle.fileno())
    index.manifest = manifest


def _swap_in(new: Path, path: Path) -> None:
    """Replace ``path`` by ``new``: two renames; a crash between them is repaired by :func:`recover`."""
    old = path.with_name(f".{path.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if path.exists():
        os.replace(path, old)
    os.replace(new, path)
    shutil.rmtree(old, ignore_errors=True)


def recover(path: Path) -> None:
    """Finish an interrupted swap: if the index is missing but its previous version was set aside, restore it.

    Does nothing while a writer holds the lock (its build folder and swap are in progress, not stale).
    """
    try:
        with write_lock(path):
            _recover(path)
    except IndexFileError:
        return


def _recover(path: Path) -> None:
    old = path.with_name(f".{path.name}.old")
    if not path.exists() and old.exists():
        os.replace(old, path)
        log.warning("restored the previous index at %s after an interrupted rebuild", path)
    for stale in path.parent.glob(f".{path.name}.new-*"):
        shutil.rmtree(stale, ignore_errors=True)


def load(path: str | Path, *, embedder: str | None = None, dimension: int | None = None) -> Index:
    """Load and check an index directory.

    Args:
        path: the directory.
        embedder, dimension: the configured embedder; a manifest made with another is refused.
    Raises:
        IndexFileError: missing, corrupt, inconsistent or mismatched files; the message says how to rebuild.
    """
    import faiss

    path = Path(path)
    with contextlib.suppress(OSError):
        recover(path)
    hint = _rebuild_hint(path)
    manifest_file = path / "manifest.json"
    if not manifest_file.is_file():
        raise IndexFileError(f"no index at {path} (manifest.json is missing); {hint}")
    try:
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        version = manifest["format_version"]
        emb = manifest["embedder"]
        files = manifest["files"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexFileError(f"the index manifest at {manifest_file} is unreadable ({exc}); {hint}") from None
    if version != FORMAT_VERSION:
        raise IndexFileError(f"the index at {path} has format {version}, this version reads {FORMAT_VERSION}; {hint}")
    if embedder is not None and emb.get("name") != embedder:
        raise IndexFileError(f"the index at {path} was built with embedder {emb.get('name')!r} but "
                          f"{embedder!r} is configured; {hint}, or configure QA_EMBEDDER={emb.get('name')}")
    if dimension is not None and emb.get("dimension") != dimension:
        raise IndexFileError(f"the index at {path} holds {emb.get('dimension')}-dimensional vectors, the embedder "
                          f"makes {dimension}; {hint}")
    for name, digest in files.items():
        file = path / name
        if not file.is_file():
            raise IndexFileError(f"the index at {path} is missing {name}; {hint}")
        if _sha256(file) != digest:
            raise IndexFileError(f"{file} does not match its checksum (corrupt or changed by hand); {hint}")
    sources: dict[str, Source] = {}
    for meta in manifest["sources"]:
        file = path / "sources" / f"{meta['id']}.txt"
        try:
            text = file.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise IndexFileError(f"cannot read source text {file} ({exc}); {hint}") from None
        if hashlib.sha256(text.encode("utf-8")).hexdigest() != meta["checksum"] or content_id(text) != meta["id"]:
            raise IndexFileError(f"source text {file} does not match its checksum; {hint}")
        sources[meta["id"]] = Source(meta["id"], meta["title"], meta["origin"], text,
                                     meta.get("date", ""), meta.get("added", ""))
    try:
        rows = json.loads((path / "passages.json").read_text(encoding="utf-8"))
        passages = [Passage(r["source_id"], r["start"], r["end"], sources[r["source_id"]].text[r["start"]:r["end"]])
                    for r in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexFileError(f"passages.json in {path} is unreadable or names an unknown source ({exc}); {hint}") from None
    try:
        vectors = faiss.read_index(str(path / "vectors.faiss"))
    except RuntimeError as exc:
        raise IndexFileError(f"vectors.faiss in {path} is unreadable ({str(exc).splitlines()[0]}); {hint}") from None
    if hasattr(vectors, "hnsw"):  # indexes saved before efSearch was raised search as wide as new ones
        vectors.hnsw.efSearch = max(vectors.hnsw.efSearch, HNSW_EF_SEARCH)
    if vectors.ntotal != len(passages) or len(passages) != manifest.get("passages"):
        raise IndexFileError(f"the index at {path} has {vectors.ntotal} vectors for {len(passages)} passages; {hint}")
    if vectors.d != emb.get("dimension"):
        raise IndexFileError(f"vectors.faiss in {path} has dimension {vectors.d}, the manifest says "
                          f"{emb.get('dimension')}; {hint}")
    log.info("index loaded from %s: %d source%s, %d passages", path, len(sources), "" if len(sources) == 1 else "s",
             len(passages))
    return Index(sources, passages, vectors, emb["name"], emb["dimension"], manifest.get("chunking", {}),
                 manifest, path)
