"""The one split of SQuAD 2.0 dev that training, calibration and evaluation all use.

SQuAD 2.0's train set (its 43,000 unanswerable questions) is not available here; its dev set is
(35 articles, 5,928 answerable and 5,945 unanswerable questions). It is split by article, in file order:

- **held out**: the odd-numbered articles (1, 3, ..., 33; 17 articles). Never trained on and never used to
  choose anything (a threshold, a cut, a data mix): only reported.
- **calibration**: the even-numbered articles :data:`CALIBRATION_ARTICLES` (0, 2, 4): thresholds and the
  cascade's cut are chosen on them.
- **train**: the other even-numbered articles (6, 8, ..., 34; 15 articles): the readers learn abstention from
  their questions.

Every consumer asks :func:`part_of` (or :func:`articles`); nothing else decides which article is which.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from qa.config import SHARED_DIR

SQUAD2_DEV = SHARED_DIR / "qa-data" / "squad-v2.0" / "dev-v2.0.json"
CALIBRATION_ARTICLES = (0, 2, 4)
PARTS = ("train", "calibration", "heldout")


def part_of(article: int) -> str:
    """Which part an article (its index in file order) belongs to: ``train``, ``calibration`` or ``heldout``."""
    if article < 0:
        raise ValueError(f"an article index is 0 or more, not {article}")
    if article % 2 == 1:
        return "heldout"
    return "calibration" if article in CALIBRATION_ARTICLES else "train"


def articles(part: str, n_articles: int) -> list[int]:
    """The indices of the articles of ``part`` among ``n_articles`` (file order).

    Raises:
        ValueError: ``part`` is not one of :data:`PARTS`.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, not {part!r}")
    return [a for a in range(n_articles) if part_of(a) == part]


@dataclass(frozen=True)
class Question:
    """One SQuAD 2.0 question with the paragraph it was written against (``golds`` empty: unanswerable)."""

    qid: str
    question: str
    context: str
    golds: tuple[str, ...]
    answer_start: int
    article: int
    title: str


@functools.lru_cache(maxsize=2)
def _articles_of(path: Path) -> list[dict]:
    """The file's articles, parsed once per process (the questions and the index of a part both need them)."""
    if not path.is_file():
        raise FileNotFoundError(f"SQuAD 2.0 dev is not at {path}: these scripts read it from ../shared/qa-data")
    return json.loads(path.read_text(encoding="utf-8"))["data"]


def load_part(part: str, path: str | Path = SQUAD2_DEV) -> list[Question]:
    """The questions of one part, in file order.

    Args:
        part: ``train``, ``calibration`` or ``heldout``.
        path: a SQuAD 2.0 JSON file (default: the shared dev set).
    Raises:
        FileNotFoundError: the file is missing (the message names it).
    """
    data = _articles_of(Path(path))
    keep = set(articles(part, len(data)))
    out = []
    for a_i, article in enumerate(data):
        if a_i not in keep:
            continue
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                answers = [] if qa.get("is_impossible") else qa.get("answers") or []
                out.append(Question(qa["id"], qa["question"].strip(), para["context"],
                                    tuple(a["text"] for a in answers),
                                    answers[0]["answer_start"] if answers else -1, a_i, article["title"]))
    return out


def article_texts(part: str, path: str | Path = SQUAD2_DEV) -> dict[int, tuple[str, list[str]]]:
    """Each article of ``part``: its index -> (title, paragraphs in order)."""
    data = _articles_of(Path(path))
    return {a: (data[a]["title"], [p["context"] for p in data[a]["paragraphs"]]) for a in articles(part, len(data))}
