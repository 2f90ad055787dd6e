"""Build, extend and shrink indexes: sources -> passages -> vectors -> :class:`qa.index.Index`.

Pure functions over in-memory indexes; writing to disk (atomic, locked) is :func:`qa.index.save`.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from qa.chunking import chunk_source
from qa.metadata import search_text
from qa.embedding import Embedder
from qa.index import Index, make_faiss
from qa.types import Passage, Source

log = logging.getLogger(__name__)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _embed_passages(embedder: Embedder, passages: list[Passage], sources: dict[str, Source],
                    progress: bool) -> np.ndarray:
    texts = [search_text(p, sources[p.source_id]) for p in passages]
    return embedder.encode(texts, progress=progress)


def chunk_and_embed(sources: list[Source], embedder: Embedder, chunking: dict,
                    progress: bool = False) -> tuple[list[Passage], np.ndarray]:
    """The passages of ``sources`` (in source order) and one unit vector per passage: the local engine.

    Another engine (``qa.ray_engine``) runs this same function on batches of sources elsewhere and puts the
    results back in this order, so the index it gives is the one this gives.
    """
    passages = [p for src in sources
                for p in chunk_source(src, chunking["chunk_tokens"], chunking["overlap_tokens"], embedder.count_tokens)]
    return passages, _embed_passages(embedder, passages, {s.id: s for s in sources}, progress)


def _vectors_of(index: Index) -> np.ndarray:
    n = index.vectors.ntotal
    return index.vectors.reconstruct_n(0, n) if n else np.zeros((0, index.dimension), np.float32)


def build(sources: list[Source], embedder: Embedder, chunk_tokens: int = 120, overlap_tokens: int = 40,
          progress: bool = False, engine=None) -> Index:
    """A new index over ``sources`` (duplicates by content id are kept once).

    Args:
        sources: the documents.
        embedder: encodes passages; its tokenizer sizes them.
        chunk_tokens, overlap_tokens: passage size and overlap in tokens.
        progress: show a progress bar while encoding.
        engine: chunks and embeds the new sources, as :func:`chunk_and_embed` (the default) does.
    """
    empty = Index({}, [], make_faiss(np.zeros((0, embedder.dimension), np.float32)), embedder.name,
                  embedder.dimension, {"chunk_tokens": chunk_tokens, "overlap_tokens": overlap_tokens})
    return add(empty, sources, embedder, progress=progress, engine=engine)[0]


def add(index: Index, sources: list[Source], embedder: Embedder, progress: bool = False,
        replace_origin: bool = True, engine=None) -> tuple[Index, dict[str, list[str]]]:
    """A copy of ``index`` with ``sources`` added.

    A source whose content is already indexed is left as it is; a source from an origin (path or URL)
    that is indexed with other content replaces that older version. ``engine`` chunks and embeds the new
    sources: :func:`chunk_and_embed` here by default, or ``qa.ray_engine.RayEngine`` on a Ray cluster.

    Returns:
        The new index and what happened: ``{"added": [...], "unchanged": [...], "replaced": [...]}`` (titles/origins).
    """
    chunking = index.chunking or {"chunk_tokens": 120, "overlap_tokens": 40}
    report: dict[str, list[str]] = {"added": [], "unchanged": [], "replaced": []}
    by_origin = {s.origin: sid for sid, s in index.sources.items()}
    drop: set[str] = set()
    new_sources: dict[str, Source] = {}
    for src in sources:
        if src.id in index.sources or src.id in new_sources:
            report["unchanged"].append(src.origin)
            continue
        old = by_origin.get(src.origin)
        if replace_origin and old is not None:
            drop.add(old)
            report["replaced"].append(src.origin)
        else:
            report["added"].append(src.origin)
        new_sources[src.id] = Source(src.id, src.title, src.origin, src.text, src.date, src.added or _now())
    base = remove(index, drop) if drop else index
    if not new_sources:
        return base, report
    passages, new_vectors = (engine or chunk_and_embed)(list(new_sources.values()), embedder, chunking, progress)
    all_sources = {**base.sources, **new_sources}
    vectors = np.concatenate([_vectors_of(base), new_vectors])
    log.info("indexed %d new passages from %d sources", len(passages), len(new_sources))
    return Index(all_sources, base.passages + passages, make_faiss(vectors), base.embedder, base.dimension,
                 dict(chunking)), report


def remove(index: Index, source_ids: set[str]) -> Index:
    """A copy of ``index`` without the given sources, their passages and their vectors."""
    keep = [i for i, p in enumerate(index.passages) if p.source_id not in source_ids]
    vectors = _vectors_of(index)[keep] if keep else np.zeros((0, index.dimension), np.float32)
    return Index({sid: s for sid, s in index.sources.items() if sid not in source_ids},
                 [index.passages[i] for i in keep], make_faiss(vectors), index.embedder, index.dimension,
                 dict(index.chunking))
