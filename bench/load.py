"""Load test of the web app: N concurrent chat sessions x M questions, checked against single-user answers.

What it does:

1. Starts the app (``python app.py --port FREE_PORT``, the shipped index and reader unless ``--index`` /
   ``QA_READER`` say otherwise) in a subprocess, or connects to a running one with ``--url``.
2. Plans ``--users`` chat users (each a browser session) of ``--questions`` questions each. A session is a series of short
   conversations: an opening question that names someone ("Who is the commander of the Quds Force?"),
   then follow-ups whose wording is the same in every conversation ("Who does he report to?", "What is his
   position?", ...). A follow-up is only answerable from the session's own history, so a history leaking
   from another session (which is asking the same follow-up about someone else at the same moment) changes
   the answer. Neighbouring sessions start on different conversations.
   Even sessions use the chat endpoint (``/chat``: the history is the session's server-side state; the
   session calls ``/clear`` between conversations); odd sessions use the API (``/ask`` with ``history`` =
   the conversation's earlier questions). ``--mode chat`` or ``--mode ask`` uses one endpoint for all.
3. Computes the reference answers first, sequentially, one session at a time (single user).
4. Runs every session at once (one thread and one ``gradio_client.Client``, hence one server session, each)
   and checks: no errors; every reply equal to the reference for the same question and history (the chat
   reply's HTML without its "Answered in" time; the API's whole JSON); in the chat, as many messages as the
   conversation has turns (no turn lost or borrowed).
5. Reports p50/p95/max latency per question as the client sees it, throughput, and the server's resident
   memory (VmRSS from ``/proc/PID/status``) sampled during the run, with the growth from 20% of the questions
   done to the end; ``--max-rss-growth-mb`` turns that into a check.

Run (the full one: 20 x 50 = 1,000 questions; a few minutes on 2 idle cores)::

    .venv/bin/python bench/load.py
    .venv/bin/python bench/load.py --users 4 --questions 5                    # quick check
    .venv/bin/python bench/load.py --url http://127.0.0.1:7860/ --pid 12345   # a running app
    .venv/bin/python bench/load.py --json runs/load-local.json                # then the same on Ray Serve:
    .venv/bin/python bench/load.py --engine ray --replicas 2 --expect runs/load-local.json

With ``--engine ray`` the started app is ``qa serve --engine ray``: the memory sampled is the web process's
(the driver's), not the replicas'. ``--expect`` compares the single-user replies with another run's.

Exit status 0 when every check passed, 1 otherwise. ``--json PATH`` also writes the results.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
               "TQDM_DISABLE": "1", "TOKENIZERS_PARALLELISM": "false"}
for _key, _value in OFFLINE_ENV.items():
    os.environ.setdefault(_key, _value)

# Conversations over the shipped article: an opening question naming someone, then the same follow-ups.
OPENERS = [
    "Who is the commander of the Quds Force?",
    "Who is the president of Iran?",
    "Who is the Iraqi prime minister?",
    "Who did William Burns meet?",
    "Who tweeted that Washington and Tehran can stabilize Iraq?",
    "Which cleric's followers have ties with Iran?",
    "Who is the supreme leader of Iran?",
    "Which group has been making rapid military advances across Iraq?",
    "What is the capital of France?",  # not in the article: the follow-ups then have no referent
]
FOLLOW_UPS = [
    "Who does he report to?",
    "What is his position?",
    "What did he say?",
    "Where is he from?",
]
# The time an answer took is left out of the comparison; what follows it (which reader answered) is compared.
TIME_RE = re.compile(r'(<p class="qa-meta">Answered in )[0-9.]+ s')


# --------------------------------------------------------------------------------------------------
# Plan


@dataclass(frozen=True)
class Step:
    """One question of a session: which conversation, which turn of it, and the question."""

    conversation: int
    turn: int
    question: str

    @property
    def history(self) -> list[str]:
        """The earlier questions of this conversation, oldest first."""
        return conversation(self.conversation)[: self.turn]


def conversation(k: int) -> list[str]:
    return [OPENERS[k % len(OPENERS)], *FOLLOW_UPS]


def plan_session(session: int, questions: int, length: int) -> list[Step]:
    """``questions`` steps: conversations session, session+1, ... (mod the openers), ``length`` turns each."""
    steps: list[Step] = []
    k = session
    while len(steps) < questions:
        for turn, question in enumerate(conversation(k)[:length]):
            if len(steps) == questions:
                break
            steps.append(Step(k % len(OPENERS), turn, question))
        k += 1
    return steps


def session_mode(session: int, mode: str) -> str:
    if mode == "mixed":
        return "chat" if session % 2 == 0 else "ask"
    return mode


# --------------------------------------------------------------------------------------------------
# Talking to the app


def _text(content: object) -> str:
    """A chatbot message's content as text (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_text(part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", content.get("value", "")))
    return str(content)


class Session:
    """One gradio_client session (one server-side chat state)."""

    def __init__(self, url: str, mode: str) -> None:
        from gradio_client import Client

        self.client = Client(url, verbose=False)
        self.mode = mode

    def clear(self) -> None:
        if self.mode == "chat":
            result = self.client.predict(None, api_name="/clear")
            if result[1]:
                raise AssertionError(f"/clear left {len(result[1])} messages")

    def ask(self, step: Step) -> str:
        """The normalised reply to ``step``: compared with the reference as a string."""
        if self.mode == "ask":
            result = self.client.predict(step.question, step.history or None, api_name="/ask")
            result.pop("timings", None)
            return json.dumps(result, sort_keys=True, ensure_ascii=False)
        _, messages, *_ = self.client.predict(step.question, None, api_name="/chat")
        expected = 2 * (step.turn + 1)
        if len(messages) != expected:
            raise AssertionError(f"the chat holds {len(messages)} messages after turn {step.turn + 1} "
                                 f"of its conversation, not {expected}")
        reply = _text(messages[-1]["content"])
        if "qa-error" in reply:
            raise AssertionError(f"the chat reported an error: {re.sub('<[^>]+>', ' ', reply).strip()[:300]}")
        return TIME_RE.sub(r"\1", reply)

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass


def run_session(url: str, mode: str, steps: list[Step], on_done=None) -> list[dict]:
    """Ask the steps in order (``/clear`` before each new conversation); one record per step."""
    records = []
    session = Session(url, mode)
    try:
        for i, step in enumerate(steps):
            record = {"conversation": step.conversation, "turn": step.turn, "question": step.question,
                      "mode": mode, "reply": None, "error": None, "seconds": None}
            started = time.perf_counter()
            try:
                if step.turn == 0 and i > 0:
                    session.clear()  # a new conversation (not counted in the question's latency)
                    started = time.perf_counter()
                record["reply"] = session.ask(step)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and reported
                record["error"] = f"{type(exc).__name__}: {exc}"
            record["seconds"] = time.perf_counter() - started
            records.append(record)
            if on_done is not None:
                on_done()
    finally:
        session.close()
    return records


# --------------------------------------------------------------------------------------------------
# The server: start one, or find the process behind a URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc: subprocess.Popen | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1.0)
    raise RuntimeError(f"the app at {url} was not ready within {timeout:.0f} s")


def start_app(index: str | None, log_path: Path, engine: str = "local",
              replicas: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start the web app on a free port: ``app.py``, or ``qa serve --engine ray --replicas N`` for Ray Serve."""
    port = free_port()
    if engine == "ray":
        cmd = [str(Path(sys.executable).parent / "qa"), "serve", "--engine", "ray",
               "--host", "127.0.0.1", "--port", str(port)]
        if replicas:
            cmd += ["--replicas", str(replicas)]
    else:
        cmd = [sys.executable, str(REPO / "app.py"), "--host", "127.0.0.1", "--port", str(port)]
    if index:
        cmd += ["--index", index]
    log = open(log_path, "wb")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **OFFLINE_ENV})
    return proc, f"http://127.0.0.1:{port}/"


def stop_app(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


def listener_pid(port: int) -> int | None:
    """The process listening on local TCP ``port`` (found through /proc; None when not visible)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if len(cols) > 9 and cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    if not inodes:
        return None
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                if os.readlink(fd) in inodes:
                    return int(proc.name)
        except OSError:
            continue
    return None


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` in MiB (VmRSS), None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class MemorySampler:
    """Samples the server's RSS every ``interval`` seconds, with how many questions were done by then."""

    def __init__(self, pid: int | None, progress, interval: float = 0.5) -> None:
        self.pid, self.progress, self.interval = pid, progress, interval
        self.samples: list[tuple[float, int, float]] = []  # (seconds since start, questions done, MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._t0 = time.perf_counter()

    def _sample(self) -> None:
        value = rss_mb(self.pid) if self.pid else None
        if value is not None:
            self.samples.append((time.perf_counter() - self._t0, self.progress(), value))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "MemorySampler":
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def summary(self, total: int) -> dict:
        if not self.samples:
            return {"pid": self.pid, "available": False}

        def at(fraction: float) -> float:
            """RSS of the first sample taken once ``fraction`` of the questions were done."""
            for _, done, value in self.samples:
                if done >= fraction * total:
                    return value
            return self.samples[-1][2]

        values = [v for _, _, v in self.samples]
        marks = {f"{int(f * 100)}%": at(f) for f in (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)}
        return {"pid": self.pid, "available": True, "samples": len(values), "start_mb": values[0],
                "end_mb": values[-1], "min_mb": min(values), "max_mb": max(values), "at_questions_done": marks,
                "growth_from_20pct_mb": values[-1] - at(0.2)}


# --------------------------------------------------------------------------------------------------
# The run


@dataclass
class Result:
    passed: bool
    summary: dict
    failures: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolation percentile (``q`` in 0-100)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def comparable_reply(reply: str | None) -> str | None:
    """A reply with its numbers rounded to 3 decimals, to compare two servers whose float rounding may differ
    (a Ray Serve replica runs torch with one thread, the single-process app with two)."""
    if reply is None:
        return None
    return re.sub(r"-?\d+\.\d{4,}(?:e-?\d+)?", lambda m: f"{float(m.group()):.3f}", reply)


def run(url: str, *, sessions: int = 20, questions: int = 50, length: int = 5, mode: str = "mixed",
        pid: int | None = None, max_rss_growth_mb: float | None = None, expect: dict[str, str] | None = None,
        log=print) -> Result:
    """Reference pass, then the concurrent pass against ``url``; checks and measurements in a :class:`Result`.

    ``expect`` (from another run's ``replies``) also checks every reference reply against that run's reply to the
    same question and history, numbers rounded to 3 decimals: the same answers from another server.
    """
    length = max(1, min(length, 1 + len(FOLLOW_UPS)))
    plans = {s: plan_session(s, questions, length) for s in range(sessions)}
    modes = {s: session_mode(s, mode) for s in range(sessions)}

    # 1. Reference answers, one user at a time: each (endpoint, conversation) as far as any session goes.
    needed: dict[tuple[str, int], int] = {}
    for s, steps in plans.items():
        for step in steps:
            key = (modes[s], step.conversation)
            needed[key] = max(needed.get(key, 0), step.turn + 1)
    reference: dict[tuple[str, int, int], str] = {}
    started = time.perf_counter()
    reference_errors = []
    for (m, k), turns in sorted(needed.items()):
        steps = [Step(k, t, q) for t, q in enumerate(conversation(k)[:turns])]
        for record in run_session(url, m, steps):
            if record["error"]:
                reference_errors.append(f"reference {m} conversation {k} turn {record['turn']}: {record['error']}")
            reference[(m, k, record["turn"])] = record["reply"]
    reference_seconds = time.perf_counter() - started
    n_reference = sum(needed.values())
    log(f"reference: {n_reference} questions, one at a time, in {reference_seconds:.1f} s")

    # A leak can only show where the same follow-up gets different replies in different conversations.
    by_follow_up: dict[tuple[str, int], set[str | None]] = {}
    for (m, k, t), reply in reference.items():
        if t > 0:
            by_follow_up.setdefault((m, t), set()).add(reply)
    asked_in = {(m, t): sum(1 for (m2, _, t2) in reference if (m2, t2) == (m, t)) for (m, t) in by_follow_up}
    comparable = [key for key, n in asked_in.items() if n > 1]
    sensitive = [key for key in comparable if len(by_follow_up[key]) > 1]

    # 2. Every session at once.
    total = sum(len(p) for p in plans.values())
    done = [0]
    lock = threading.Lock()

    def tick() -> None:
        with lock:
            done[0] += 1

    with MemorySampler(pid, lambda: done[0]) as sampler:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=sessions) as pool:
            futures = {s: pool.submit(run_session, url, modes[s], plans[s], tick) for s in range(sessions)}
            results = {s: f.result() for s, f in futures.items()}
        wall = time.perf_counter() - started

    # 3. Checks.
    failures = list(reference_errors)
    replies = {f"{m}|{k}|{t}": reply for (m, k, t), reply in sorted(reference.items())}
    expected_mismatches = None
    if expect is not None:
        expected_mismatches = 0
        for key, reply in replies.items():
            if key not in expect:
                failures.append(f"reference {key}: not in the expected replies (run both with the same plan)")
                expected_mismatches += 1
            elif comparable_reply(reply) != comparable_reply(expect[key]):
                failures.append(f"reference {key}: the reply differs from the expected server's")
                expected_mismatches += 1
    latencies, errors, mismatches = [], 0, 0
    for s, records in results.items():
        for record in records:
            latencies.append(record["seconds"])
            where = f"session {s} ({record['mode']}) conversation {record['conversation']} turn {record['turn']}"
            if record["error"]:
                errors += 1
                failures.append(f"{where}: {record['error']}")
            elif record["reply"] != reference.get((record["mode"], record["conversation"], record["turn"])):
                mismatches += 1
                failures.append(f"{where}: the reply to {record['question']!r} differs from the single-user reply")
    memory = sampler.summary(total)
    if max_rss_growth_mb is not None and memory.get("available") and memory["growth_from_20pct_mb"] > max_rss_growth_mb:
        failures.append(f"server memory grew {memory['growth_from_20pct_mb']:.1f} MiB from 20% of the questions to "
                        f"the end (limit {max_rss_growth_mb:g} MiB)")
    summary = {
        "url": url, "sessions": sessions, "questions_per_session": questions, "conversation_length": length,
        "mode": mode, "questions": total, "follow_ups": sum(1 for p in plans.values() for st in p if st.turn > 0),
        "reference_questions": n_reference, "reference_seconds": reference_seconds,
        "wall_seconds": wall, "throughput_qps": total / wall if wall else float("nan"),
        "errors": errors, "mismatches": mismatches, "expected_compared": None if expect is None else len(replies),
        "expected_mismatches": expected_mismatches, "replies": replies,
        "leak_sensitive_follow_ups": len(sensitive), "comparable_follow_ups": len(comparable),
        "latency_ms": {"p50": 1000 * percentile(latencies, 50), "p95": 1000 * percentile(latencies, 95),
                       "max": 1000 * max(latencies, default=float("nan")),
                       "mean": 1000 * statistics.fmean(latencies) if latencies else float("nan")},
        "memory": memory, "loadavg": os.getloadavg(),
    }
    return Result(not failures, summary, failures)


def report(result: Result) -> str:
    s = result.summary
    lat, mem = s["latency_ms"], s["memory"]
    lines = [
        f"{s['sessions']} sessions x {s['questions_per_session']} questions = {s['questions']} questions "
        f"({s['follow_ups']} follow-ups; mode {s['mode']}) in {s['wall_seconds']:.1f} s, "
        f"{s['throughput_qps']:.2f} questions/s",
        f"errors {s['errors']}, replies different from the single-user reply {s['mismatches']}",
        *([f"single-user replies compared with the expected server's: {s['expected_compared']}, different "
           f"{s['expected_mismatches']}"] if s.get("expected_compared") is not None else []),
        f"leak check: {s['leak_sensitive_follow_ups']} of {s['comparable_follow_ups']} follow-up positions get "
        "different single-user replies in different conversations (a leaked history would show there)",
        f"latency per question: p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, max {lat['max']:.0f} ms",
    ]
    if mem.get("available"):
        marks = ", ".join(f"{k} {v:.0f}" for k, v in mem["at_questions_done"].items())
        lines.append(f"server RSS (pid {mem['pid']}, MiB) at questions done: {marks}; min {mem['min_mb']:.0f}, "
                     f"max {mem['max_mb']:.0f}; growth from 20% to the end {mem['growth_from_20pct_mb']:+.1f} MiB "
                     f"({mem['samples']} samples)")
    else:
        lines.append("server RSS: not measured (give --pid, or run the app on this machine)")
    lines.append(f"load average {s['loadavg'][0]:.2f} (other jobs on the machine inflate the times)")
    lines.append("PASS" if result.passed else f"FAIL ({len(result.failures)} problems)")
    lines += [f"  - {f}" for f in result.failures[:20]]
    if len(result.failures) > 20:
        lines.append(f"  ... and {len(result.failures) - 20} more")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", help="a running app (default: start app.py on a free port)")
    parser.add_argument("--pid", type=int, help="the server's process id, for its memory (default: the app started, "
                        "or the process listening on the --url port)")
    parser.add_argument("--index", help="index directory for the started app (default: the shipped index/)")
    parser.add_argument("--users", "--sessions", dest="sessions", metavar="N", type=int, default=20,
                        help="concurrent chat users, each with its own browser session (default 20)")
    parser.add_argument("--questions", type=int, default=50, help="questions per session (default 50)")
    parser.add_argument("--conversation-length", type=int, default=5,
                        help=f"turns per conversation, the opener included (1-{1 + len(FOLLOW_UPS)}, default 5)")
    parser.add_argument("--mode", choices=["mixed", "chat", "ask"], default="mixed",
                        help="endpoint per session: mixed (even sessions /chat, odd /ask; default), chat or ask")
    parser.add_argument("--max-rss-growth-mb", type=float, default=100.0,
                        help="fail when the server's RSS grows more than this from 20%% of the questions to the end "
                             "(default 100; negative: no check)")
    parser.add_argument("--startup-timeout", type=float, default=600.0, help="seconds to wait for the app to start")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON (the replies included)")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="the started app: app.py (local, default) or qa serve --engine ray (Ray Serve)")
    parser.add_argument("--replicas", type=int, metavar="N", help="Ray Serve replicas for --engine ray (default 2)")
    parser.add_argument("--expect", metavar="JSON",
                        help="another run's --json: its single-user replies must equal this run's (numbers to 3 "
                             "decimals), e.g. the single-process app's for a Ray Serve run")
    args = parser.parse_args(argv)
    expect = None
    if args.expect:
        try:
            expect = json.loads(Path(args.expect).read_text(encoding="utf-8"))["replies"]
        except (OSError, ValueError, KeyError) as exc:
            print(f"load.py: error: cannot read the expected replies from {args.expect}: {exc}", file=sys.stderr)
            return 1

    proc = None
    tmp = tempfile.TemporaryDirectory(prefix="qa-load-")
    log_path = Path(tmp.name) / "app.log"
    try:
        if args.url:
            url = args.url if args.url.endswith("/") else args.url + "/"
            pid = args.pid
            if pid is None:
                from urllib.parse import urlsplit

                port = urlsplit(url).port
                pid = listener_pid(port) if port else None
            wait_ready(url, None, 30)
        else:
            proc, url = start_app(args.index, log_path, args.engine, args.replicas)
            print(f"starting the app at {url} (pid {proc.pid}) ...", flush=True)
            started = time.perf_counter()
            wait_ready(url, proc, args.startup_timeout)
            print(f"ready in {time.perf_counter() - started:.1f} s", flush=True)
            pid = args.pid or proc.pid
        growth = args.max_rss_growth_mb if args.max_rss_growth_mb >= 0 else None
        result = run(url, sessions=args.sessions, questions=args.questions, length=args.conversation_length,
                     mode=args.mode, pid=pid, max_rss_growth_mb=growth, expect=expect)
    except (RuntimeError, OSError) as exc:
        print(f"load.py: error: {exc}", file=sys.stderr)
        if proc is not None and log_path.exists():
            print("app log (last lines):\n" + "\n".join(log_path.read_text(errors="replace").splitlines()[-30:]),
                  file=sys.stderr)
        return 1
    finally:
        if proc is not None:
            stop_app(proc)
        tmp.cleanup()
    print(report(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**result.summary, "passed": result.passed,
                                               "failures": result.failures}, indent=2), encoding="utf-8")
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
