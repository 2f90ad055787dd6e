"""Helpers shared by the benchmark scripts: statistics, tables, JSON output, SQuAD corpora, environment notes.

Not a benchmark itself. The scripts put ``bench/`` on ``sys.path`` by being run as ``python bench/NAME.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
DEV_QA = SHARED / "eval" / "article_dev_qa.jsonl"
SQUAD_DEV = SHARED / "qa-data" / "squad-v1.1" / "dev-v1.1.json"
SQUAD_TRAIN = SHARED / "qa-data" / "squad-v1.1" / "train-v1.1.json"

# No network at run time, no analytics, no progress bars in the logs.
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
for _key, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)

log = logging.getLogger("bench")


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpcore", "sentence_transformers", "bm25s", "qa", "urllib3", "gradio", "faiss",
                  "faiss.loader"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON to PATH")
    parser.add_argument("--threads", type=int, default=2, help="torch / FAISS threads (default 2: the target machine)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")


def start(parser: argparse.ArgumentParser, argv: list[str] | None) -> tuple[argparse.Namespace, dict]:
    """Add the common options, parse ``argv``, set up logging and threads. Returns (args, environment())."""
    add_common_args(parser)
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    env = environment()
    set_threads(args.threads)
    return args, env


def int_list(text: str) -> list[int]:
    """'1k,10k,1m' or '0,10,100' -> [1000, 10000, 1000000] / [0, 10, 100]."""
    out = []
    for part in text.split(","):
        part = part.strip().lower().replace("_", "")
        if not part:
            continue
        mult = 1
        if part[-1] in "km":
            mult = 1000 if part[-1] == "k" else 1_000_000
            part = part[:-1]
        out.append(int(float(part) * mult))
    return out


def float_list(text: str) -> list[float]:
    return [float(p) for p in text.split(",") if p.strip()]


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (0-100), as ``qa.evaluation.percentile``."""
    from qa.evaluation import percentile as pct

    return pct(list(values), q)


def summarize_ms(seconds: list[float]) -> dict:
    """n, median, p95, mean and min in milliseconds of a list of durations in seconds."""
    if not seconds:
        return {"n": 0, "median_ms": float("nan"), "p95_ms": float("nan"), "mean_ms": float("nan"),
                "min_ms": float("nan")}
    return {"n": len(seconds), "median_ms": 1000 * statistics.median(seconds), "p95_ms": 1000 * percentile(seconds, 95),
            "mean_ms": 1000 * statistics.fmean(seconds), "min_ms": 1000 * min(seconds)}


def fmt(value: object, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table(headers: list[str], rows: list[list[object]], digits: int = 1) -> str:
    """A Markdown table (readable in a terminal, pasteable into README / issues)."""
    cells = [[fmt(c, digits) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = lambda items: "| " + " | ".join(s.ljust(w) for s, w in zip(items, widths)) + " |"  # noqa: E731
    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _status_mb(field: str) -> float | None:
    """A memory field of ``/proc/self/status`` (``VmHWM``, ``VmRSS``) in MiB; None where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def max_rss_mb() -> float:
    """Peak resident memory of this process in MiB: VmHWM, else ``ru_maxrss``.

    VmHWM belongs to the current address space, so it starts afresh at exec; ``ru_maxrss`` does not on Linux: a
    child started by fork + exec keeps the peak of the parent's copy, which would add the parent's size.
    """
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident memory now (VmRSS) in MiB; NaN where /proc is missing."""
    now = _status_mb("VmRSS")
    return now if now is not None else float("nan")


def environment() -> dict:
    """What the numbers were measured on, including the load average (other jobs compete for the CPU)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "cpu": cpu, "commit": commit,
            "loadavg_start": os.getloadavg(), "nice": os.nice(0), "time": time.strftime("%Y-%m-%dT%H:%M:%S")}


def set_threads(n: int) -> None:
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:
        pass


def header(title: str, env: dict) -> str:
    return (f"## {title}\n\ncommit {env['commit'] or '?'}, {env['cpus']} CPUs ({env['cpu'] or 'unknown'}), "
            f"nice {env['nice']}, load average at start {env['loadavg_start'][0]:.2f} "
            f"(a load above the CPU count means other jobs compete for the CPU and times are inflated)\n")


def write_json(path: str | None, payload: dict) -> None:
    if not path:
        return
    payload = {**payload, "env": {**payload.get("env", {}), "loadavg_end": os.getloadavg()}}
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    log.info("wrote %s", path)


def search_text_function():
    """The library's ``search_text(passage, source)`` (the text retrieval embeds and indexes for a passage)."""
    from qa.metadata import search_text

    return search_text


# -- SQuAD ---------------------------------------------------------------------------------------------


def squad_articles(path: Path = SQUAD_DEV) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)["data"]


def squad_sources(n: int, first: Path = SQUAD_DEV, then: Path = SQUAD_TRAIN):
    """``n`` SQuAD articles as :class:`qa.types.Source` (title line + paragraphs), from ``first`` then ``then``.

    SQuAD v1.1 dev has 48 articles; beyond that the train articles follow.
    """
    from qa.types import Source

    out = []
    for path in (first, then):
        for article in squad_articles(path):
            if len(out) >= n:
                return out
            title = article["title"].replace("_", " ")
            text = title + "\n\n" + "\n\n".join(p["context"].strip() for p in article["paragraphs"]) + "\n"
            out.append(Source.from_text(text, title, f"squad:{path.stem}:{article['title']}"))
    return out


def squad_paragraphs(path: Path = SQUAD_TRAIN, limit: int | None = None) -> list[tuple[str, str]]:
    """(article title, paragraph) pairs in file order."""
    out = []
    for article in squad_articles(path):
        title = article["title"].replace("_", " ")
        for p in article["paragraphs"]:
            out.append((title, p["context"].strip()))
            if limit is not None and len(out) >= limit:
                return out
    return out


def squad_questions(path: Path = SQUAD_DEV) -> list[str]:
    return [qa["question"] for a in squad_articles(path) for p in a["paragraphs"] for qa in p["qas"]]
