"""Dense, BM25 and fused (reciprocal rank fusion) retrieval over an index."""

from __future__ import annotations

import functools
import logging
import re

import numpy as np

from qa.metadata import search_text
from qa.embedding import Embedder
from qa.index import Index
from qa.types import ScoredPassage

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"\w+", re.UNICODE)
# Function words carry no topic; removing them keeps BM25 from matching on "the" and "of".
STOPWORDS = frozenset(
    "a an the of in on at to for from by with and or but is are was were be been being do does did has have had "
    "what which who whom whose when where why how that this these those it its as into than then there their they "
    "he she his her him them we our you your i me my not no about according article text".split()
)


@functools.lru_cache(maxsize=1)
def _stemmer():
    import Stemmer  # PyStemmer: the Snowball stemmers

    return Stemmer.Stemmer("english")


def tokenize(text: str) -> list[str]:
    """Lower-cased, stemmed word tokens without stop words, for BM25 ("published" matches "publication")."""
    return _stemmer().stemWords([t for t in _TOKEN.findall(text.lower()) if t not in STOPWORDS])


def rrf(rankings: list[list[int]], k: int = 60) -> dict[int, float]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) to each id it ranks (rank from 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, pid in enumerate(ranking, start=1):
            fused[pid] = fused.get(pid, 0.0) + 1.0 / (k + rank)
    return fused


def fuse(rankings: list[list[int]], k: int, rrf_k: int = 60, heads: int = 0) -> list[tuple[int, float]]:
    """The k best ids by reciprocal rank fusion, keeping each ranking's first ``heads`` ids among them.

    RRF rewards an id that both rankings place fairly high over one that a single ranking places first by a
    wide margin; when the other ranking misses that id (dense retrieval on a rare name, BM25 on a paraphrase)
    plain RRF can push it out of the k read. ``heads`` reserves room for each ranking's best ids after the fused
    best (so ``k=1`` is plain RRF); the rest of the k places go by fused score.

    Args:
        rankings: id lists, best first.
        k: ids to return.
        rrf_k: the RRF constant.
        heads: ids from the top of each ranking that are always kept (0: plain RRF).
    Returns:
        (id, fused score) pairs, best fused score first.
    """
    fused = rrf(rankings, rrf_k)
    order = sorted(fused, key=lambda i: -fused[i])
    chosen: list[int] = order[:1]  # the fused best always comes first
    for rank in range(heads):
        for ranking in rankings:
            if rank < len(ranking) and ranking[rank] not in chosen and len(chosen) < k:
                chosen.append(ranking[rank])
    for i in order:
        if len(chosen) >= k:
            break
        if i not in chosen:
            chosen.append(i)
    return sorted(((i, fused[i]) for i in chosen), key=lambda kv: -kv[1])


class Retriever:
    """Ranks an index's passages for a question by ``dense``, ``bm25`` or ``hybrid`` retrieval."""

    def __init__(self, index: Index, embedder: Embedder, mode: str = "hybrid", rrf_k: int = 60,
                 fusion_heads: int = 0) -> None:
        self.index = index
        self.embedder = embedder
        self.mode = mode
        self.rrf_k = rrf_k
        self.fusion_heads = fusion_heads
        self._bm25 = None

    def _bm25_model(self):
        if self._bm25 is None:
            import bm25s

            logging.getLogger("bm25s").setLevel(logging.WARNING)  # bm25s sets DEBUG on its own logger
            model = bm25s.BM25()
            corpus = [tokenize(self._passage_text(i)) or ["\x00"] for i in range(len(self.index.passages))]
            model.index(corpus, show_progress=False)
            self._bm25 = model
        return self._bm25

    def _passage_text(self, i: int) -> str:
        p = self.index.passages[i]
        return search_text(p, self.index.sources[p.source_id])

    def dense(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-k (passage id, cosine) per query."""
        scores, ids = self.index.search(self.embedder.encode(queries), k)
        return [[(int(i), float(s)) for i, s in zip(row_ids, row_s) if i >= 0] for row_ids, row_s in zip(ids, scores)]

    def bm25(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        """Top-k (passage id, BM25 score) per query; passages with no query word are left out."""
        if not self.index.passages:
            return [[] for _ in queries]
        model = self._bm25_model()
        out = []
        for q in queries:
            words = [t for t in tokenize(q) if t in model.vocab_dict]
            if not words:
                out.append([])
                continue
            scores = model.get_scores(words)
            top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            top = top[np.argsort(-scores[top], kind="stable")]
            out.append([(int(i), float(scores[i])) for i in top if scores[i] > 0])
        return out

    def search(self, queries: list[str], k: int, mode: str | None = None) -> list[list[ScoredPassage]]:
        """The k best passages for each query, best first.

        Args:
            queries: the questions (already rewritten with history, if any).
            k: passages per query.
            mode: overrides the retriever's mode for this call.
        Returns:
            Per query, scored passages; the score is the cosine (dense), BM25 score (bm25) or fused RRF score.
        """
        mode = mode or self.mode
        if mode == "dense":
            results = self.dense(queries, k)
        elif mode == "bm25":
            results = self.bm25(queries, k)
        else:
            depth = max(k * 4, 20)
            dense, sparse = self.dense(queries, depth), self.bm25(queries, depth)
            results = []
            for d, s in zip(dense, sparse):
                results.append(fuse([[i for i, _ in d], [i for i, _ in s]], k, self.rrf_k, self.fusion_heads))
        return [[ScoredPassage(self.index.passages[i], score, i) for i, score in row[:k]] for row in results]

