"""Issue #23, serving: ``qa serve --engine ray --replicas N`` answers as the single-process app.

The assistant as a Ray Serve deployment of 2 replicas on a local Ray of 2 CPUs (started once for the module;
skipped, with the reason, where Ray Serve is not installed or Ray cannot start), with the real embedder and the
tiny offline reader: the web app's ``/ask`` handler over it gives the answers of the same handler over a local
assistant, both replicas answer, errors arrive as the app expects them, and an index rebuilt on disk reaches
every replica.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import ARTICLE
from qa import cli

QUESTIONS = ["Who is the commander of the Quds Force?", "How many forces did Iran send to Iraq?",
             "When did the Obama administration withdraw its forces?", "What is the capital of Peru?",
             "Which firm built the container terminal in Port Aldana?"]
HARBOUR = ("Harbour Report\n\nThe new container terminal in Port Aldana opened on 3 March. It was built by the "
           "engineering firm Korvell Marine at a cost of 41 million euros.\n")
FESTIVAL = ("Lakeside Jazz Festival\n\nThe Lakeside Jazz Festival is held every July in the town of Mirren. This "
            "year the opening concert was given by the pianist Elena Sorvino.\n")


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("serving")
    (folder / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    (folder / "festival.txt").write_text(FESTIVAL, encoding="utf-8")
    path = folder / "index"
    assert cli.main(["index", "build", str(ARTICLE), str(folder / "harbour.txt"), "--index", str(path), "-q"]) == 0
    return path


@pytest.fixture(scope="module")
def served(index_dir, tiny_reader_dir):
    pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'articleqa[ray]')")
    from qa.ray_engine import RayError, connect
    from qa.serving import serve_assistant

    try:
        owns = connect(num_cpus=2, object_store_memory=200 * 2**20)
    except RayError as exc:
        pytest.skip(f"Ray cannot start here: {exc}")
    import ray

    try:
        assistant = serve_assistant(index_dir, replicas=2, reader=str(tiny_reader_dir))
        yield assistant
        assistant.close()
    finally:
        if owns:
            ray.shutdown()


def split_scores(value, scores: list):
    """``value`` without its ``score`` numbers (collected in ``scores``): they are compared within 1e-3."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "score":
                scores.append(item)
            else:
                out[key] = split_scores(item, scores)
        return out
    if isinstance(value, list):
        return [split_scores(item, scores) for item in value]
    return value


def assert_same_answer(a: dict, b: dict) -> None:
    sa, sb = [], []
    assert split_scores(a, sa) == split_scores(b, sb)
    assert sa == pytest.approx(sb, abs=1e-3)


def replica_files(served, replicas: int = 2, timeout: float = 60.0) -> dict[str, dict]:
    """The index files each replica holds, asking until ``replicas`` distinct replicas have answered."""
    seen: dict[str, dict] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < replicas and time.monotonic() < deadline:
        got = served.index_files()
        seen[got["replica"]] = got["files"]
    return seen


def test_the_app_over_ray_serve_answers_as_the_single_process_app(served, index_dir, tiny_reader_dir):
    import gradio as gr

    from qa.assistant import Assistant
    from qa.web import WebChat

    local = WebChat(Assistant.load(index_dir, reader=str(tiny_reader_dir)))
    remote = WebChat(served)
    for question in QUESTIONS:
        assert_same_answer(remote.api_ask(question), local.api_ask(question))
    history = ["Who is the commander of the Quds Force?"]
    assert_same_answer(remote.api_ask("Who does he report to?", history), local.api_ask("Who does he report to?",
                                                                                         history))
    with pytest.raises(gr.Error, match="empty"):  # the QuestionError raised on a replica, as the app shows it
        remote.api_ask("   ")
    assert served.reader is None  # the web process loads no reader
    assert [s.id for s in served.sources()] == [s.id for s in local.assistant.sources()]


def test_both_replicas_answer_and_a_rebuilt_index_reaches_every_replica(served, index_dir, tiny_reader_dir):
    from qa import index as store
    from qa.assistant import Assistant

    before = store.load(index_dir).manifest["files"]
    assert list(replica_files(served).values()) == [before, before]
    festival = index_dir.parent / "festival.txt"
    assert cli.main(["index", "add", str(festival), "--index", str(index_dir), "-q"]) == 0
    after = store.load(index_dir).manifest["files"]
    assert after != before
    deadline = time.monotonic() + 60
    files = {}
    while time.monotonic() < deadline:
        files = replica_files(served)
        if list(files.values()) == [after, after]:
            break
        time.sleep(0.5)
    assert list(files.values()) == [after, after]
    question = "Who gave the opening concert of the Lakeside Jazz Festival?"
    local = Assistant.load(index_dir, reader=str(tiny_reader_dir))
    assert_same_answer(served.ask(question).to_dict(), local.ask(question).to_dict())


def test_serve_options_need_engine_ray(capsys):
    assert cli.main(["serve", "--replicas", "2"]) == 1
    assert "--replicas and --ray-address go with --engine ray" in capsys.readouterr().err
