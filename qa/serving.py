"""The assistant on Ray Serve: ``qa serve --engine ray --replicas N [--ray-address ADDR]``.

N replicas of a Ray Serve deployment each load the models and the index (:meth:`qa.assistant.Assistant.load`, the
same settings as the web process) and answer questions; the web app (:func:`qa.web.launch`, the same Gradio page
and ``/ask`` API) runs in the ``qa`` process over a :class:`ServedAssistant`, which sends every question to the
deployment through a deployment handle (Ray Serve spreads them over the replicas) and does everything else
(the source list, uploads, removals) with a local assistant over the same index directory, as the single-process
app does. No Serve HTTP proxy is started: the handle is the only way in.

Every replica follows the index on disk: before a question, at most once a second, it reads ``manifest.json``
and reloads when the index's files changed (a ``qa index build``, ``qa index add`` or an upload through the app),
so a rebuilt index reaches every replica within about a second of its swap. On a cluster the index directory
must be at the same path on every node that runs a replica (a shared file system).

Ray's own Gradio integration (``ray.serve.gradio_integrations``) was written for Gradio 3 and is not used.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from pathlib import Path
from typing import Sequence

from qa.ray_engine import RayError, _import_ray, connect

log = logging.getLogger(__name__)

APP_NAME = "articleqa"
# How often (at most) a replica looks at the index's manifest on disk before answering.
FOLLOW_EVERY_S = 1.0


class AssistantReplica:
    """One replica: an :class:`~qa.assistant.Assistant` over ``index_dir`` that follows the index on disk.

    Args:
        index_dir: the index directory (absolute: replicas do not run in the ``qa`` process's folder).
        settings: :class:`qa.config.Settings` fields, the web process's, so that answers are the same.
        threads: torch threads (the replica's CPUs).
    """

    def __init__(self, index_dir: str, settings: dict, threads: int = 1) -> None:
        import torch

        from qa.assistant import Assistant

        torch.set_num_threads(max(1, threads))
        self.manifest = Path(index_dir) / "manifest.json"
        self.assistant = Assistant.load(index_dir, **settings)
        self.assistant.reader  # load the reader now, not on the first question  # noqa: B018
        self.assistant.rereader  # and a cascade's second reader  # noqa: B018
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _follow_index(self) -> None:
        """Reload when the index on disk is not the one held (looked at at most every :data:`FOLLOW_EVERY_S`)."""
        from qa.index import IndexFileError

        with self._lock:
            now = time.monotonic()
            if now - self._checked < FOLLOW_EVERY_S:
                return
            self._checked = now
            try:
                files = json.loads(self.manifest.read_text(encoding="utf-8"))["files"]
            except (OSError, ValueError, KeyError, TypeError):
                return  # mid-swap or being repaired: the next question looks again
            if files == self.assistant.index.manifest.get("files"):
                return
            try:
                if self.assistant.reload():
                    log.info("replica reloaded the index at %s (%d passages)", self.manifest.parent,
                             len(self.assistant.index))
            except IndexFileError as exc:
                log.warning("the index on disk cannot be loaded (%s); this replica keeps the one it has", exc)

    def ask(self, question: str, history: Sequence | None = None):
        self._follow_index()
        return self.assistant.ask(question, history=history)

    def ask_many(self, questions: Sequence[str], histories: Sequence | None = None):
        self._follow_index()
        return self.assistant.ask_many(questions, histories)

    def index_files(self) -> dict:
        """Which replica this is and the files of the index it holds (for checks and tests)."""
        from ray import serve

        self._follow_index()
        return {"replica": serve.get_replica_context().replica_tag,
                "files": self.assistant.index.manifest.get("files")}


class ServedAssistant:
    """An :class:`~qa.assistant.Assistant` for :func:`qa.web.launch` whose questions are answered on Ray Serve.

    ``ask`` and ``ask_many`` go to the deployment; every other attribute (``index``, ``sources``, ``settings``,
    ``add_sources``, ``remove_source``, ``reload``, ``info``...) is the local assistant's, over the same index
    directory, whose changes the replicas follow. Use :func:`serve_assistant` to make one, and :meth:`close`.
    """

    def __init__(self, local, handle, owns_ray: bool, timeout_s: float = 120.0) -> None:
        self._local = local
        self._handle = handle
        self._owns_ray = owns_ray
        self._timeout_s = timeout_s

    @property
    def reader(self):
        """None: the replicas read; the web process never loads a reader."""
        return None

    def ask(self, question: str, history: Sequence | None = None):
        history = list(history) if history else None
        return self._handle.ask.remote(question, history).result(timeout_s=self._timeout_s)

    def ask_many(self, questions: Sequence[str], histories: Sequence | None = None):
        return self._handle.ask_many.remote(list(questions), None if histories is None else list(histories)) \
            .result(timeout_s=self._timeout_s * max(1, len(questions)))

    def index_files(self) -> dict:
        return self._handle.index_files.remote().result(timeout_s=self._timeout_s)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._local, name)

    def close(self) -> None:
        """Remove the deployment; stop the local Ray :func:`serve_assistant` started."""
        ray = _import_ray()
        if not ray.is_initialized():
            return
        if self._owns_ray:  # the whole local Ray goes, Serve with it
            ray.shutdown()
            return
        from ray import serve

        serve.delete(APP_NAME)


def serve_assistant(index_dir: str | Path | None = None, *, replicas: int = 2, address: str | None = None,
                    cpus_per_replica: int = 1, num_cpus: int | None = None, quiet: bool = True,
                    **settings: object) -> ServedAssistant:
    """Deploy ``replicas`` replicas of the assistant over ``index_dir`` on Ray Serve and wait until they answer.

    Args:
        index_dir: the index directory (default: the shipped ``index/``).
        replicas: how many replicas (each loads the embedder, the reader and the index).
        address: the Ray cluster; None starts a local Ray (stopped by :meth:`ServedAssistant.close`).
        cpus_per_replica: CPUs each replica reserves, and its torch threads.
        num_cpus: CPUs of a local Ray (None: all).
        quiet: keep Ray's logs and the replicas' output off the terminal.
        **settings: :class:`qa.config.Settings` fields over ``QA_*`` variables, for the replicas and the web process.
    Raises:
        RayError: Ray (with Serve) is missing or cannot start, or the deployment failed.
        qa.config.ConfigError, qa.index.IndexFileError: as :meth:`Assistant.load` (checked here first).
    """
    from qa.assistant import Assistant
    from qa.config import DEFAULT_INDEX_DIR, Settings

    if replicas < 1:
        raise RayError(f"--replicas must be at least 1, not {replicas}")
    path = Path(index_dir or DEFAULT_INDEX_DIR).resolve()
    config = Settings.from_env(**settings)
    local = Assistant.load(path, **dataclasses.asdict(config))  # fails here, with the usual message, if it cannot
    owns = connect(address, num_cpus=num_cpus, quiet=quiet)
    try:
        try:
            from ray import serve
        except ImportError as exc:
            raise RayError(f"--engine ray needs Ray Serve ({exc}); pip install 'articleqa[ray]'") from None
        serve.start(proxy_location="Disabled")
        deployment = serve.deployment(AssistantReplica, name="Assistant", num_replicas=replicas,
                                      ray_actor_options={"num_cpus": cpus_per_replica})
        try:
            handle = serve.run(deployment.bind(str(path), dataclasses.asdict(config), cpus_per_replica),
                               name=APP_NAME, route_prefix=None)
        except Exception as exc:  # noqa: BLE001 - a replica that cannot start: say why in one line
            from qa.ray_engine import _root_cause

            raise RayError(f"the assistant could not be deployed on Ray Serve ({_root_cause(exc)})") from None
    except BaseException:
        if owns:
            _import_ray().shutdown()
        raise
    log.info("the assistant runs on Ray Serve: %d replica%s", replicas, "" if replicas == 1 else "s")
    return ServedAssistant(local, handle, owns)
