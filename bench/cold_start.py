"""Cold start: wall time from process start to the first answer, for the CLI, the Python API and the web app.

What it measures, each ``--repeats`` times (median and p95), side by side in one run:

* **python -c pass**: the bare interpreter start (the floor of everything else).
* **CLI**: ``.venv/bin/qa ask QUESTION --json`` as a subprocess, from spawn to exit (the answer is parsed
  from its JSON output to check that one came back; anything on stderr fails the run); with ``--runtimes``, the
  same once more per ``QA_RUNTIME`` value.
* **Python API**, one subprocess with timestamps at each step: ``import qa.assistant`` (torch, transformers,
  FAISS...), ``Assistant.load()`` (embedder + index), ``assistant.reader`` (reader load), the first ``ask``
  and a second (warm) ``ask``. This is the breakdown of the CLI number.
* **web app**: ``python app.py --port FREE_PORT`` (what ``scripts/serve.sh`` and ``qa serve`` run) as a
  subprocess; time until its HTTP port answers, then until the first answer through the ``/ask`` API with
  ``gradio_client`` (the client is imported before the clock starts); then the server is terminated.

Run::

    .venv/bin/python bench/cold_start.py
    .venv/bin/python bench/cold_start.py --repeats 5 --json bench/results/cold_start.json
    .venv/bin/python bench/cold_start.py --repeats 1 --no-app        # quick check
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import _common as c

log = logging.getLogger("bench.cold_start")

QUESTION = "Who is the commander of the Quds Force?"

API_STEPS = r"""
import json, sys, time
t0 = float(sys.argv[1]); marks = {"interpreter": time.time() - t0}
import qa.assistant
marks["import qa.assistant"] = time.time() - t0
from qa.assistant import Assistant
a = Assistant.load()
marks["Assistant.load"] = time.time() - t0
a.reader
marks["reader load"] = time.time() - t0
ans = a.ask(sys.argv[2])
marks["first ask"] = time.time() - t0
a.ask(sys.argv[2])
marks["second ask"] = time.time() - t0
print(json.dumps({"marks": marks, "answer": ans.text}))
"""


def env() -> dict:
    return {**os.environ, **c.OFFLINE_ENV}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_cli(question: str, runtime: str | None = None, reader: str | None = None) -> tuple[float, str | None]:
    """Seconds from spawn to exit of ``qa ask QUESTION --json`` (with ``QA_RUNTIME=runtime`` and ``QA_READER=reader``
    when given), and its answer.

    Raises:
        RuntimeError: it failed, or wrote anything on stderr (a cold start must be quiet).
    """
    started = time.perf_counter()
    done = subprocess.run([str(c.REPO / ".venv" / "bin" / "qa"), "ask", question, "--json"], capture_output=True,
                          text=True, cwd=c.REPO, env={**env(), **({"QA_RUNTIME": runtime} if runtime else {}),
                                                      **({"QA_READER": reader} if reader else {})},
                          timeout=600)
    seconds = time.perf_counter() - started
    if done.returncode != 0 or done.stderr:
        raise RuntimeError(f"qa ask failed ({done.returncode}) or was not quiet: {done.stderr.strip()[-500:]}")
    return seconds, json.loads(done.stdout)["answer"]


def time_bare() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=env())
    return time.perf_counter() - started


def time_api(question: str) -> dict:
    started = time.time()
    done = subprocess.run([sys.executable, "-c", API_STEPS, repr(started), question], capture_output=True, text=True,
                          cwd=c.REPO, env=env(), timeout=600)
    total = time.time() - started
    if done.returncode != 0:
        raise RuntimeError(f"API run failed: {done.stderr.strip()[-800:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {**out["marks"], "process exit": total, "answer": out["answer"]}


def time_app(question: str, timeout: float) -> dict:
    from gradio_client import Client  # imported before the clock starts

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    logfile = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: a full pipe would stall the server
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(c.REPO / "app.py"), "--port", str(port)], cwd=c.REPO, env=env(),
                            stdout=logfile, stderr=subprocess.STDOUT, text=True)
    try:
        port_open = None
        while port_open is None:
            if proc.poll() is not None:
                logfile.seek(0)
                raise RuntimeError(f"app.py exited ({proc.returncode}): {logfile.read()[-800:]}")
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"app.py did not answer on {url} within {timeout:.0f} s")
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        port_open = time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
        client = Client(url, verbose=False)
        client_ready = time.perf_counter() - started
        result = client.predict(question, api_name="/ask")
        first = time.perf_counter() - started
        t0 = time.perf_counter()
        client.predict(question, api_name="/ask")
        second = time.perf_counter() - t0
        answer = (result if isinstance(result, dict) else json.loads(result)).get("answer")
        return {"port open": port_open, "client connected": client_ready, "first answer": first,
                "second answer (warm)": second, "answer": answer}
    finally:
        proc.send_signal(signal.SIGTERM)  # the server we started, by its own pid
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logfile.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--question", default=QUESTION)
    parser.add_argument("--repeats", type=int, default=3, help="cold starts of each kind (default 3)")
    parser.add_argument("--no-app", action="store_true", help="skip the web app")
    parser.add_argument("--no-api", action="store_true", help="skip the Python API breakdown")
    parser.add_argument("--runtimes", default="", help="also time `qa ask` with QA_RUNTIME set to each of these "
                        "(comma-separated: torch, onnx, onnx-int8), interleaved with the others")
    parser.add_argument("--app-timeout", type=float, default=300, help="seconds to wait for the app (default 300)")
    c.add_common_args(parser)
    args = parser.parse_args(argv)
    c.setup_logging(args.verbose)
    info = c.environment()
    samples: dict[str, list[float]] = {}
    answers: dict[str, str | None] = {}

    def add(name: str, seconds: float) -> None:
        samples.setdefault(name, []).append(seconds)

    for rep in range(args.repeats):  # interleaved: a change in background load hits every kind alike
        log.info("repeat %d/%d", rep + 1, args.repeats)
        add("python -c pass", time_bare())
        seconds, answers["CLI"] = time_cli(args.question)
        add("CLI: qa ask --json (spawn to exit)", seconds)
        for runtime in filter(None, args.runtimes.split(",")):
            seconds, answers[f"CLI {runtime}"] = time_cli(args.question, runtime)
            add(f"CLI: QA_RUNTIME={runtime} qa ask --json (spawn to exit)", seconds)
        if not args.no_api:
            marks = time_api(args.question)
            answers["API"] = marks.pop("answer")
            for name, value in marks.items():
                add(f"API: {name} (since spawn)", value)
        if not args.no_app:
            marks = time_app(args.question, args.app_timeout)
            answers["app"] = marks.pop("answer")
            for name, value in marks.items():
                add(f"app: {name}" + ("" if "warm" in name else " (since spawn)"), value)

    cli = c.summarize_ms(samples["CLI: qa ask --json (spawn to exit)"])["median_ms"]
    results = []
    for name, values in samples.items():
        s = c.summarize_ms(values)
        results.append({"what": name, **s, "x CLI": c.ratio(s["median_ms"], cli)})
    print(c.header("Cold start to first answer (bench/cold_start.py)", info))
    print(c.table(["what", "n", "median ms", "p95 ms", "min ms", "x CLI"],
                  [[r["what"], r["n"], r["median_ms"], r["p95_ms"], r["min_ms"], r["x CLI"]] for r in results]))
    print()
    print(f"question {args.question!r}; answers: " + ", ".join(f"{k} {v!r}" for k, v in answers.items()))
    c.write_json(args.json, {"script": "cold_start", "args": vars(args), "env": info, "results": results,
                             "answers": answers, "samples": samples})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
