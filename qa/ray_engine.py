"""Index building on Ray: ``qa index build|add SOURCES --engine ray [--ray-address ADDR]``.

The costly step of a build, chunking (sized by the embedder's tokenizer) and embedding, runs as a Ray Data
``map_batches`` over a pool of actors, each of which loads the embedder once and then chunks and embeds batches
of sources with :func:`qa.building.chunk_and_embed`, the very function the local build runs. The driver (the
``qa`` process) does everything else as the local build does, with the same code: it reads the sources (one
report, same skips), decides what is added, unchanged or replaced (:func:`qa.building.add`), puts the passages
back in source order, builds the FAISS index (exact or HNSW by size, :func:`qa.index.make_faiss`) and saves it
with the same lock and atomic swap (:func:`qa.index.save`). So the index equals the local one: same sources,
passages and ids, vectors equal to float rounding (batches are padded differently).

Ray is an optional dependency (``pip install 'articleqa[ray]'``); nothing here imports it until a build asks for
it. Without ``address`` a private local Ray is started for the build and stopped after it; with one (``auto``,
``HOST:6379`` or ``ray://HOST:10001``) the build runs on that cluster, whose every node needs this package, its
models and the same Ray and Python versions. A worker that dies mid-build is restarted and its batches are
retried by Ray Data (its actor pools restart actors and retry their tasks); an error in the code itself fails the
build, and a failed build saves nothing, so the previous index stays as it was. See docs/ray.md.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np

from qa.config import ConfigError
from qa.types import Passage, Source

log = logging.getLogger(__name__)

# Sources per map_batches call: a news article gives about 8 passages, so about 128 passages per batch, two
# embedder batches; small enough to spread a few hundred sources over two workers, large enough that the
# per-call overhead (a few ms) is far below the embedding time (about a second).
SOURCES_PER_BATCH = 16
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CAUSE_LINE = re.compile(r"^([A-Za-z_][\w.]*): (.*)\n\s*\nThe above exception was the direct cause", re.M)
INSTALL_HINT = "install it with `pip install 'articleqa[ray]'` (the same version on every node)"


class RayError(ConfigError):
    """Ray is missing, cannot start or cannot reach the cluster, or the distributed build failed."""


def _import_ray():
    # No usage report is sent from a build, and Ray's dashboard is never started.
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
        import ray.data  # noqa: F401 - ray[data] is needed, not only the core
    except ImportError as exc:
        raise RayError(f"--engine ray needs Ray with its Data library ({exc}); {INSTALL_HINT}") from None
    return ray


def local_temp_dir() -> str:
    """Where a local Ray keeps its sessions, sockets and logs: ``$RAY_TMPDIR`` or ``/tmp/ray`` (never the repository).

    Kept short: Ray's socket paths must fit in 107 characters.
    """
    return os.environ.get("RAY_TMPDIR") or str(Path(tempfile.gettempdir()) / "ray")


def _root_cause(exc: BaseException) -> str:
    """``Type: message`` of the error a worker raised, out of Ray's wrappers (task error, user code error).

    A worker's exception reaches the driver as its traceback text: the first ``Type: message`` line that is the
    direct cause of Ray's own wrapper is the worker's error.
    """
    text = _ANSI.sub("", str(exc))
    found = _CAUSE_LINE.search(text)
    if found:
        return f"{found.group(1).rsplit('.', 1)[-1]}: {found.group(2).strip()[:300]}"
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first[:300]}" if first else type(exc).__name__


def connect(address: str | None = None, *, num_cpus: int | None = None, object_store_memory: int | None = None,
            quiet: bool = True) -> bool:
    """Connect this process to the Ray cluster at ``address``, or start a private local Ray when it is None.

    A Ray already initialised in this process (a test's, a notebook's) is used as it is. The dashboard is not
    started, usage statistics are not sent, a local Ray keeps its files under :func:`local_temp_dir`.

    Returns:
        Whether this call started Ray (then ``ray.shutdown()`` is the caller's to call).
    Raises:
        RayError: Ray is missing, cannot start, or the cluster cannot be reached.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return False
    level = logging.WARNING if quiet else logging.INFO
    try:
        if address:
            ray.init(address=address, include_dashboard=False, logging_level=level, log_to_driver=not quiet)
        else:
            # Ray turns token authentication on for a new local cluster and warns that it did, every time: the
            # warning is not for a quiet command.
            if quiet:
                logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
            ray.init(address="local", num_cpus=num_cpus, object_store_memory=object_store_memory,
                     include_dashboard=False, _temp_dir=local_temp_dir(), logging_level=level,
                     log_to_driver=not quiet)
    except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, AuthenticationError...
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        why = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise RayError(f"could not start or reach {where} ({why[:300]}): check the address (`ray status` on the "
                       "head node prints it) or run without --ray-address for a local Ray") from None
    resources = ray.cluster_resources()
    log.info("Ray: %d nodes, %g CPUs", sum(1 for n in ray.nodes() if n.get("Alive")), resources.get("CPU", 0))
    return True


class _ChunkEmbedWorker:
    """One actor of the pool: loads the embedder once, then chunks and embeds batches of sources.

    A batch is columns ``pos id title origin text date added`` (one row per source); the answer is one row per
    passage: ``pos`` (the source's position in the build), ``ordinal`` (the passage's place in its source),
    ``start``, ``end`` and ``vector``.
    """

    def __init__(self, embedder_name: str, chunking: dict, threads: int) -> None:
        import torch

        from qa.embedding import Embedder

        torch.set_num_threads(max(1, threads))
        self.embedder = Embedder.load(embedder_name)
        self.chunking = dict(chunking)

    def __call__(self, batch: dict) -> dict:
        from qa.building import chunk_and_embed

        sources = [Source(str(i), str(t), str(o), str(x), str(d), str(a)) for i, t, o, x, d, a in
                   zip(batch["id"], batch["title"], batch["origin"], batch["text"], batch["date"], batch["added"])]
        passages, vectors = chunk_and_embed(sources, self.embedder, self.chunking)
        where = {src.id: int(pos) for src, pos in zip(sources, batch["pos"])}
        pos = np.array([where[p.source_id] for p in passages], dtype=np.int64)
        ordinal = np.zeros(len(passages), dtype=np.int64)
        for i in range(1, len(passages)):
            ordinal[i] = ordinal[i - 1] + 1 if pos[i] == pos[i - 1] else 0
        return {"pos": pos, "ordinal": ordinal,
                "start": np.array([p.start for p in passages], dtype=np.int64),
                "end": np.array([p.end for p in passages], dtype=np.int64),
                "vector": np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(passages), -1)}


class RayEngine:
    """Chunks and embeds sources on Ray; pass it as ``engine`` to :func:`qa.building.build` / :func:`qa.building.add`.

    Use it as a context manager: entering connects to the cluster (or starts a local Ray), leaving disconnects
    (and stops the local Ray). A Ray already initialised in this process (a test's, a notebook's) is used as it
    is and left running.

    Args:
        embedder_name: the embedder setting; every worker loads it (a folder must exist on every node).
        address: the cluster (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``); None starts a local Ray.
        workers: actors in the pool; None: as many as the cluster has CPUs for (``cpus_per_worker`` each).
        cpus_per_worker: CPUs each actor reserves, and its torch threads.
        num_cpus: CPUs of a local Ray (None: all of this machine's); not used with ``address``.
        object_store_memory: bytes of a local Ray's object store (None: Ray's default, 30% of the memory).
        sources_per_batch: sources per ``map_batches`` call.
        quiet: keep Ray's own logs, progress bars and worker output off the terminal.
    """

    # The actor class of the pool (a test puts one that fails or dies here).
    worker_class = _ChunkEmbedWorker

    def __init__(self, embedder_name: str, *, address: str | None = None, workers: int | None = None,
                 cpus_per_worker: int = 1, num_cpus: int | None = None, object_store_memory: int | None = None,
                 sources_per_batch: int = SOURCES_PER_BATCH, quiet: bool = True) -> None:
        if workers is not None and workers < 1:
            raise RayError(f"--ray-workers must be at least 1, not {workers}")
        if cpus_per_worker < 1:
            raise RayError(f"the CPUs per Ray worker must be at least 1, not {cpus_per_worker}")
        self.embedder_name = embedder_name
        self.address = address
        self.workers = workers
        self.cpus_per_worker = cpus_per_worker
        self.num_cpus = num_cpus
        self.object_store_memory = object_store_memory
        self.sources_per_batch = max(1, sources_per_batch)
        self.quiet = quiet
        self._ray = None
        self._owns_ray = False
        self.last_run: dict = {}

    # -- connection -------------------------------------------------------------------------------------------

    def __enter__(self) -> "RayEngine":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Connect to the cluster at ``address``, or start a local Ray (idempotent)."""
        if self._ray is not None:
            return
        self._owns_ray = connect(self.address, num_cpus=self.num_cpus, object_store_memory=self.object_store_memory,
                                 quiet=self.quiet)
        ray = self._ray = _import_ray()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = not self.quiet
        context.print_on_execution_start = not self.quiet
        if self.quiet:  # not even its stack traces: a failed build says why in one line
            logging.getLogger("ray.data").setLevel(logging.CRITICAL)

    def close(self) -> None:
        """Disconnect from the cluster; stop the local Ray this engine started."""
        if self._ray is not None and self._owns_ray:
            self._ray.shutdown()
        self._ray, self._owns_ray = None, False

    def pool_size(self) -> int:
        """Actors in the pool: ``workers``, or as many as the cluster's CPUs allow."""
        cpus = self._ray.cluster_resources().get("CPU", 1) if self._ray is not None else (os.cpu_count() or 1)
        if self.workers is not None:
            if self.workers * self.cpus_per_worker > cpus:
                log.warning("%d Ray workers of %d CPU need more than the cluster's %g CPUs: the others wait for "
                            "CPUs (or for nodes to join)", self.workers, self.cpus_per_worker, cpus)
            return self.workers
        return max(1, int(cpus // self.cpus_per_worker))

    # -- the engine -------------------------------------------------------------------------------------------

    def __call__(self, sources: list[Source], embedder, chunking: dict,
                 progress: bool = False) -> tuple[list[Passage], np.ndarray]:
        """What :func:`qa.building.chunk_and_embed` returns for ``sources``, computed on the cluster.

        Args:
            sources: the sources to chunk and embed (new ones, ``added`` set).
            embedder: the driver's embedder: its name must be this engine's and sizes the vectors.
            chunking: ``chunk_tokens`` and ``overlap_tokens``.
            progress: show a progress bar of the sources done.
        Raises:
            RayError: the cluster could not run the build (nothing is saved; the index is unchanged).
        """
        if embedder.name != self.embedder_name:
            raise RayError(f"the Ray workers load embedder {self.embedder_name!r} but the index uses "
                           f"{embedder.name!r}")
        dimension = embedder.dimension
        if not sources:
            return [], np.zeros((0, dimension), np.float32)
        self.start()
        ray = self._ray
        started = time.perf_counter()
        rows = [{"pos": i, "id": s.id, "title": s.title, "origin": s.origin, "text": s.text, "date": s.date,
                 "added": s.added} for i, s in enumerate(sources)]
        blocks = max(1, min(len(rows), -(-len(rows) // self.sources_per_batch)))
        size = min(self.pool_size(), blocks)  # an actor with no batch to do would only load the model
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            self.worker_class,
            fn_constructor_kwargs={"embedder_name": self.embedder_name, "chunking": dict(chunking),
                                   "threads": self.cpus_per_worker},
            batch_size=self.sources_per_batch, batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=size), num_cpus=self.cpus_per_worker)
        parts: dict[str, list[np.ndarray]] = {key: [] for key in ("pos", "ordinal", "start", "end", "vector")}
        bar, seen = None, set()
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(sources), desc="Sources embedded on Ray", unit="source")
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                if not len(batch["pos"]):
                    continue
                for key in parts:
                    parts[key].append(np.asarray(batch[key]))
                if bar is not None:
                    seen.update(np.unique(batch["pos"]).tolist())
                    bar.update(len(seen) - bar.n)
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - whatever the cluster raised: the build failed, nothing is saved
            log.debug("the Ray build failed", exc_info=True)
            raise RayError(f"the build on Ray failed ({_root_cause(exc)}); nothing was saved, the index is as it "
                           "was (-v shows the workers' output)") from None
        finally:
            if bar is not None:
                bar.close()
        if not parts["pos"]:
            return [], np.zeros((0, dimension), np.float32)
        cols = {key: np.concatenate(values) for key, values in parts.items()}
        order = np.lexsort((cols["ordinal"], cols["pos"]))
        _check_complete(sources, cols["pos"][order], cols["ordinal"][order])
        vectors = np.ascontiguousarray(cols["vector"][order], dtype=np.float32).reshape(len(order), -1)
        if vectors.shape[1] != dimension:
            raise RayError(f"the Ray workers made {vectors.shape[1]}-dimensional vectors, the driver's embedder "
                           f"{dimension}: install the same embedder on every node")
        passages = []
        for i in order:
            src = sources[int(cols["pos"][i])]
            start, end = int(cols["start"][i]), int(cols["end"][i])
            passages.append(Passage(src.id, start, end, src.text[start:end]))
        seconds = time.perf_counter() - started
        self.last_run = {"workers": size, "sources": len(sources), "passages": len(passages), "seconds": seconds}
        log.info("Ray: %d passages from %d sources on %d workers in %.1f s", len(passages), len(sources), size,
                 seconds)
        return passages, vectors


def _check_complete(sources: list[Source], pos: np.ndarray, ordinal: np.ndarray) -> None:
    """Every source's passages came back exactly once: ordinals 0, 1, 2... for each source that has text.

    Raises:
        RayError: a batch came back twice or not at all (then nothing is saved).
    """
    starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]]) if len(pos) else np.zeros(0, np.int64)
    expected = np.arange(len(pos)) - np.repeat(starts, np.diff(np.r_[starts, len(pos)]))
    missing = {i for i, s in enumerate(sources) if s.text.strip()} - set(pos.tolist())
    if missing or not np.array_equal(ordinal, expected):
        what = f"no passages for {len(missing)} of the sources" if missing else "passages twice or with gaps"
        raise RayError(f"the build on Ray returned {what}; nothing was saved, the index is as it was: run the build "
                       "again")


def add_sources(index_dir: str | Path, refs: list[str], engine: RayEngine, *, glob: str = "**/*",
                allow_private: bool = False, progress: bool = False, embedder_name: str | None = None):
    """``qa index add`` on Ray: read ``refs``, add the new ones to the index at ``index_dir`` and save it.

    The same steps as :meth:`qa.assistant.Assistant.add_sources` (same report, same decisions, the index saved
    only when it changed), with chunking and embedding on ``engine``, and the index's write lock held from
    loading to saving so that no other writer's change is lost meanwhile.

    Returns:
        (the :class:`qa.sources.LoadReport` with ``changes`` set, the index now on disk).
    """
    from qa import building, index as index_store
    from qa.assistant import shared_embedder
    from qa.config import Settings
    from qa.sources import load_sources

    path = Path(index_dir)
    name = embedder_name or Settings.from_env().embedder
    embedder = shared_embedder(name)
    index_store.recover(path)
    report = load_sources(list(refs), glob=glob, allow_private=allow_private)
    with index_store.write_lock(path):
        index = index_store.load(path, embedder=name, dimension=embedder.dimension)
        new, changes = building.add(index, report.sources, embedder, progress=progress, engine=engine)
        if new is not index:  # else nothing changed: the saved index stays byte-for-byte as it was
            index_store.save(new, path, lock=False)
    report.changes = changes
    return report, new
