"""Who may change the index through the web app (qa.access), the limits on uploads and on the index, and the
names uploads are cited under.

The apps run in-process on 127.0.0.1 but are built with the rules of another address (``0.0.0.0``), so each
test sees what an anonymous client of a shared deployment would. Every refused write is checked against the
index directory on disk, byte for byte.
"""

from __future__ import annotations

import importlib.util
import json
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import REPO
from test_web import free_port, reader_override, running

pytest.importorskip("gradio_client")

import gradio as gr  # noqa: E402
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from qa import web  # noqa: E402
from qa.access import Access, EditRefused, LimitError, Limits, index_bytes, is_loopback_host  # noqa: E402
from qa.config import ConfigError  # noqa: E402

TOKEN = "editor-token-0123456789abcdef"
BANANA = ("Banana Festival Notes\n\nThe banana festival opened in Quito on Saturday, with music in the old "
          "town and a parade of growers from the coast.")
BANANA_QUESTION = "Where did the banana festival open?"


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under the index folder and its bytes, and the names beside it (a lock or build folder)."""
    files = {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
    files["<beside>"] = "\n".join(sorted(p.name for p in folder.parent.iterdir())).encode()
    return files


def request(host: str = "127.0.0.1", headers: dict | None = None, username: str | None = None):
    """Stands in for a gradio.Request: the client address, the headers, the logged-in user."""
    return SimpleNamespace(client=SimpleNamespace(host=host), headers=headers or {}, username=username)


@pytest.fixture()
def index_copy(article_index, tmp_path) -> Path:
    from qa import index as store

    path = tmp_path / "shared" / "index"
    store.save(article_index, path)
    return path


@pytest.fixture()
def assistant(index_copy, request):
    from qa.assistant import Assistant

    return Assistant.load(index_copy, no_answer_threshold=-1e9, **reader_override(request))


@pytest.fixture()
def banana(tmp_path) -> Path:
    """An upload as Gradio stores it: the original name in a hashed temporary folder."""
    folder = tmp_path / "gradio" / "5cbe0123456789abcdef"
    folder.mkdir(parents=True)
    path = folder / "banana-festival.txt"
    path.write_text(BANANA, encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# The rules


def test_loopback_addresses_are_told_from_shared_ones():
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]", None, ""):
        assert is_loopback_host(host), host
    for host in ("0.0.0.0", "::", "192.168.1.20", "10.0.0.1", "example.org", "my-laptop"):
        assert not is_loopback_host(host), host


def test_editing_is_open_on_loopback_off_elsewhere_and_needs_credentials_once_they_are_set(tmp_path):
    assert Access.from_env("127.0.0.1", {}).mode == "open"
    off = Access.from_env("0.0.0.0", {})
    assert off.mode == "off" and not off.editing
    assert "0.0.0.0" in off.reason and "QA_EDIT_TOKEN_FILE" in off.reason and "docs/deploy.md" in off.reason
    assert Access.from_env("127.0.0.1", {}, public=True).mode == "off"  # a share link
    assert Access.from_env("127.0.0.1", {"QA_READ_ONLY": "1"}).mode == "off"
    for host in ("127.0.0.1", "0.0.0.0"):  # credentials are needed on any address once they are configured
        editors = Access.from_env(host, {"QA_EDIT_TOKEN": TOKEN})
        assert editors.mode == "editors" and editors.needs_token_box
    assert Access.from_env("0.0.0.0", {"QA_EDIT_TOKEN": TOKEN, "QA_READ_ONLY": "yes"}).mode == "off"
    logins = tmp_path / "logins"
    logins.write_text("# readers and editors\nalice:wonderland\nbob:builder\n", encoding="utf-8")
    by_login = Access.from_env("0.0.0.0", {"QA_AUTH_FILE": str(logins), "QA_EDITORS": "alice"})
    assert by_login.mode == "editors" and not by_login.needs_token_box
    assert by_login.launch_auth() == [("alice", "wonderland"), ("bob", "builder")]
    readers_only = Access.from_env("0.0.0.0", {"QA_AUTH_FILE": str(logins)})
    assert readers_only.mode == "off" and readers_only.launch_auth()  # asking behind a login, no editing


def test_bad_access_settings_are_refused_with_what_to_do(tmp_path):
    logins = tmp_path / "logins"
    logins.write_text("alice:wonderland\n", encoding="utf-8")
    bad = tmp_path / "bad-logins"
    bad.write_text("alice\n", encoding="utf-8")
    cases = [
        ({"QA_EDIT_TOKEN": "short"}, "at least 16 characters"),
        ({"QA_EDIT_TOKEN": TOKEN, "QA_EDIT_TOKEN_FILE": str(logins)}, "not both"),
        ({"QA_EDIT_TOKEN_FILE": str(tmp_path / "missing")}, "cannot read it"),
        ({"QA_EDITORS": "alice"}, "set QA_AUTH_FILE"),
        ({"QA_AUTH_FILE": str(logins), "QA_EDITORS": "alice,mallory"}, "mallory"),
        ({"QA_AUTH_FILE": str(bad)}, "user:password"),
        ({"QA_READ_ONLY": "maybe"}, "QA_READ_ONLY"),
    ]
    for env, message in cases:
        with pytest.raises(ConfigError, match=message):
            Access.from_env("0.0.0.0", env)


def test_the_token_comes_from_a_file_and_a_wrong_or_missing_one_is_refused(tmp_path):
    file = tmp_path / "token"
    file.write_text(TOKEN + "\n", encoding="utf-8")
    file.chmod(0o600)
    access = Access.from_env("0.0.0.0", {"QA_EDIT_TOKEN_FILE": str(file)})
    assert access.check(TOKEN, request("203.0.113.9")) == "token"
    for token, message in ((None, "needs the editor token"), ("", "needs the editor token"),
                           (TOKEN[:-1] + "x", "token is wrong")):
        with pytest.raises(EditRefused, match=message) as refused:
            access.check(token, request("203.0.113.9"))
        assert "not changed" in str(refused.value)
    assert TOKEN not in repr(access)


def test_open_editing_takes_requests_straight_from_this_machine_only():
    access = Access.from_env("127.0.0.1", {})
    assert access.check(None, None) == "local"  # an in-process call
    assert access.check(None, request("127.0.0.1")) == "local"
    assert access.check(None, request("::1")) == "local"
    for remote in (request("192.168.1.7"), request("127.0.0.1", {"X-Forwarded-For": "203.0.113.9"}),
                   request("127.0.0.1", {"forwarded": "for=203.0.113.9"})):
        with pytest.raises(EditRefused, match="straight from the machine"):
            access.check(None, remote)
        assert not access.offers_editing_to(remote)
    with pytest.raises(EditRefused, match="read-only"):
        Access.from_env("0.0.0.0", {}).check(TOKEN, request())


def test_editor_logins_edit_and_other_logins_do_not(tmp_path):
    logins = tmp_path / "logins"
    logins.write_text("alice:wonderland\nbob:builder\n", encoding="utf-8")
    access = Access.from_env("0.0.0.0", {"QA_AUTH_FILE": str(logins), "QA_EDITORS": "alice"})
    assert access.check(None, request("203.0.113.9", username="alice")) == "alice"
    assert access.offers_editing_to(request(username="alice")) and not access.offers_editing_to(request(username="bob"))
    with pytest.raises(EditRefused, match="bob, who is not an editor"):
        access.check(None, request(username="bob"))
    with pytest.raises(EditRefused, match="not logged in"):
        access.check(None, None)


def test_limits_come_from_the_environment_and_bad_values_are_refused():
    assert Limits.from_env({}) == Limits()
    limits = Limits.from_env({"QA_MAX_UPLOAD_BYTES": "1000", "QA_MAX_SOURCES_PER_REQUEST": "3",
                              "QA_MAX_INDEX_SOURCES": "5", "QA_MAX_INDEX_PASSAGES": "1_000",
                              "QA_MAX_INDEX_BYTES": "2000000"})
    assert limits == Limits(1000, 3, 5, 1000, 2_000_000)
    for value in ("ten", "0", "-1"):
        with pytest.raises(ConfigError, match="QA_MAX_INDEX_SOURCES"):
            Limits.from_env({"QA_MAX_INDEX_SOURCES": value})


def test_the_index_size_is_known_before_it_is_written(saved_index, article_index):
    on_disk = sum(p.stat().st_size for p in saved_index.rglob("*") if p.is_file())
    assert abs(index_bytes(article_index) - on_disk) <= 0.02 * on_disk


# --------------------------------------------------------------------------------------------------
# The handlers, in-process


def test_an_upload_is_recorded_and_cited_under_its_file_name_not_its_temporary_path(assistant, banana, index_copy):
    chat = web.WebChat(assistant)
    report, *_ = chat.add([str(banana)], "", None, [])
    assert "1 source added or replaced" in report and "<td>added</td><td>banana-festival.txt</td>" in report
    assert str(banana.parent) not in report
    new = next(s for s in assistant.sources() if s.title == "Banana Festival Notes")
    assert new.origin == "banana-festival.txt"
    manifest = (index_copy / "manifest.json").read_text(encoding="utf-8")
    assert '"origin": "banana-festival.txt"' in manifest and str(banana.parent) not in manifest
    answer = assistant.ask(BANANA_QUESTION)
    assert any(p.passage.source_id == new.id for p in answer.passages)
    shown = json.dumps(answer.to_dict()) + web.render_answer(answer, assistant.index.sources)
    assert "gradio" not in shown and str(banana.parent) not in shown
    assert all(c.origin == "banana-festival.txt" for c in answer.citations if c.source_id == new.id)
    # Uploading a changed file of the same name replaces the older version.
    banana.write_text(BANANA.replace("Saturday", "Sunday"), encoding="utf-8")
    report, *_ = chat.add([str(banana)], "", None, [])
    assert "<td>replaced</td><td>banana-festival.txt</td>" in report
    assert [s.origin for s in assistant.sources()].count("banana-festival.txt") == 1


def test_a_skipped_upload_is_reported_under_its_file_name(assistant, tmp_path):
    folder = tmp_path / "gradio" / "0123abcd"
    folder.mkdir(parents=True)
    empty = folder / "empty.txt"
    empty.write_text("", encoding="utf-8")
    report, *_ = web.WebChat(assistant).add([str(empty)], "", None, [])
    assert "<td>skipped</td><td>empty.txt</td>" in report and str(folder) not in report


def test_each_limit_refuses_cleanly_and_leaves_the_index_as_it_was(assistant, index_copy, banana, tmp_path):
    before = snapshot(index_copy)
    passages = len(assistant.index)
    size = index_bytes(assistant.index)
    others = []
    for n in range(3):
        other = tmp_path / f"note-{n}.txt"
        other.write_text(f"Note {n}\n\nThe ferry number {n} leaves at seven.", encoding="utf-8")
        others.append(str(other))
    long_text = tmp_path / "long.txt"
    long_text.write_text("Long Notes\n\n" + " ".join(f"Sentence {i} is about harbour {i}." for i in range(400)),
                         encoding="utf-8")
    cases = [
        (Limits(max_sources_per_request=2), others, "3 sources in one request; the limit is 2 "
                                                    "(QA_MAX_SOURCES_PER_REQUEST)"),
        (Limits(max_upload_bytes=100), [str(banana)], f"banana-festival.txt is {banana.stat().st_size} bytes; the "
                                                      "limit is 100 bytes per file (QA_MAX_UPLOAD_BYTES)"),
        (Limits(max_index_sources=1), [str(banana)], "already holds 1 source; the limit is 1 (QA_MAX_INDEX_SOURCES)"),
        (Limits(max_index_sources=2), others[:2], "would hold 3 sources; the limit is 2"),
        (Limits(max_index_passages=passages + 2), [str(long_text)], "passages; the limit is "
                                                                    f"{passages + 2} (QA_MAX_INDEX_PASSAGES)"),
        (Limits(max_index_bytes=size + 500), [str(long_text)], "on disk; the limit is "),
    ]
    for limits, refs, message in cases:
        report, *rest = web.WebChat(assistant, limits=limits).add(refs, "", None, [])
        assert "Nothing was added" in report and message in report, (message, report)
        assert all(r == gr.skip() for r in rest)
        assert len(assistant.sources()) == 1 and len(assistant.index) == passages
        assert snapshot(index_copy) == before


def test_a_refused_write_changes_nothing_and_says_why(assistant, index_copy, banana):
    before = snapshot(index_copy)
    chat = web.WebChat(assistant, Access.from_env("0.0.0.0", {"QA_EDIT_TOKEN": TOKEN}))
    sid = assistant.sources()[0].id
    for call in (lambda: chat.add([str(banana)], "", None, [], "wrong-token", request("203.0.113.9")),
                 lambda: chat.remove(sid, None, [], None, request("203.0.113.9")),
                 lambda: chat.reload(None, [], "", request("203.0.113.9"))):
        with pytest.raises(gr.Error, match="editor token") as refused:
            call()
        assert "not changed" in refused.value.message
    assert snapshot(index_copy) == before and len(assistant.sources()) == 1


# --------------------------------------------------------------------------------------------------
# The running app, through gradio_client


def write_paths(demo) -> list[str]:
    """The api names of every event whose handler can change the index, however it is exposed."""
    chat = demo.qa_chat
    writers = {chat.add, chat.remove, chat.reload}
    return [fn.api_name for fn in demo.fns.values() if fn.fn in writers]


def test_an_anonymous_client_cannot_change_the_index_of_a_shared_app(assistant, index_copy, banana):
    """The default rules on 0.0.0.0: no Index tab, no write endpoint (documented or not), no uploads."""
    before = snapshot(index_copy)
    demo_access = Access.from_env("0.0.0.0", {})
    with running(assistant, demo_access) as (url, demo):
        assert write_paths(demo) == []
        config = json.loads(urllib.request.urlopen(url + "config", timeout=30).read())
        labels = [c.get("props", {}).get("label") for c in config["components"]]
        assert "Index" not in labels and not any("Files to add" in str(label) for label in labels)
        client = Client(url, verbose=False)
        for api_name, args in (("/add_sources", ([handle_file(str(banana))], "", None)),
                               ("/remove_source", (assistant.sources()[0].id, None)), ("/reload", (None,))):
            with pytest.raises(ValueError, match="Cannot find"):
                client.predict(*args, api_name=api_name)
            body = json.dumps({"data": list(args[1:])}).encode()
            call = urllib.request.Request(f"{url}gradio_api/call{api_name}", body,
                                          {"Content-Type": "application/json"})
            with pytest.raises(urllib.error.HTTPError):
                urllib.request.urlopen(call, timeout=30)
        # Nothing takes files: Gradio's upload route refuses them too.
        upload = urllib.request.Request(f"{url}gradio_api/upload", _multipart(banana),
                                        {"Content-Type": "multipart/form-data; boundary=qa-boundary"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(upload, timeout=30)
        assert refused.value.code == 413
        assert client.predict(BANANA_QUESTION, api_name="/ask")["passages"]  # asking is open
    assert snapshot(index_copy) == before and len(assistant.sources()) == 1


def _multipart(path: Path) -> bytes:
    return (b"--qa-boundary\r\nContent-Disposition: form-data; name=\"files\"; filename=\"" + path.name.encode()
            + b"\"\r\nContent-Type: text/plain\r\n\r\n" + path.read_bytes() + b"\r\n--qa-boundary--\r\n")


def test_with_an_editor_token_only_its_holder_changes_the_index(assistant, index_copy, banana, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN, encoding="utf-8")
    access = Access.from_env("0.0.0.0", {"QA_EDIT_TOKEN_FILE": str(token_file)})
    before = snapshot(index_copy)
    sid = assistant.sources()[0].id
    with running(assistant, access) as (url, demo):
        assert sorted(write_paths(demo)) == ["add_sources", "reload", "remove_source"]
        anonymous = Client(url, verbose=False)
        for token, message in (("", "needs the editor token"), ("not-the-token-at-all", "token is wrong")):
            with pytest.raises(AppError, match=message):
                anonymous.predict([handle_file(str(banana))], "", None, token, api_name="/add_sources")
            with pytest.raises(AppError, match=message):
                anonymous.predict(sid, None, token, api_name="/remove_source")
            with pytest.raises(AppError, match=message):
                anonymous.predict(None, token, api_name="/reload")
        with pytest.raises(Exception):  # noqa: B017, PT011 - the token left out: Gradio refuses the call itself
            anonymous.predict([handle_file(str(banana))], "", None, api_name="/add_sources")
        assert snapshot(index_copy) == before and len(assistant.sources()) == 1

        editor = Client(url, verbose=False)
        report = editor.predict([handle_file(str(banana))], "", None, TOKEN, api_name="/add_sources")[0]
        assert "<td>added</td><td>banana-festival.txt</td>" in report
        new = next(s for s in assistant.sources() if s.title == "Banana Festival Notes")
        assert new.origin == "banana-festival.txt"  # not /tmp/gradio/<hash>/banana-festival.txt
        result = anonymous.predict(BANANA_QUESTION, api_name="/ask")
        assert any(p["source"] == new.id for p in result["passages"])
        origins = [c["origin"] for c in result["citations"]] + [c["citation"]["origin"] for c in result["candidates"]]
        assert all("/" not in origin for origin in origins), origins
        message = editor.predict(new.id, None, TOKEN, api_name="/remove_source")[0]
        assert "Removed" in message and [s.id for s in assistant.sources()] == [sid]
        assert "has not changed" in editor.predict(None, TOKEN, api_name="/reload")[0]


def test_with_logins_everyone_logs_in_and_only_editors_change_the_index(assistant, index_copy, tmp_path):
    logins = tmp_path / "logins"
    logins.write_text("alice:wonderland-0\nbob:builder-0\n", encoding="utf-8")
    access = Access.from_env("0.0.0.0", {"QA_AUTH_FILE": str(logins), "QA_EDITORS": "alice"})
    before = snapshot(index_copy)
    with running(assistant, access) as (url, _):
        with pytest.raises(Exception):  # noqa: B017, PT011 - no login, no app (gradio_client's own error)
            Client(url, verbose=False)
        bob = Client(url, auth=("bob", "builder-0"), verbose=False)
        assert bob.predict(BANANA_QUESTION, api_name="/ask")["passages"]
        with pytest.raises(AppError, match="bob, who is not an editor"):
            bob.predict(None, api_name="/reload")
        with pytest.raises(AppError, match="not an editor"):
            bob.predict(assistant.sources()[0].id, None, api_name="/remove_source")
        assert snapshot(index_copy) == before
        alice = Client(url, auth=("alice", "wonderland-0"), verbose=False)
        assert "has not changed" in alice.predict(None, api_name="/reload")[0]


def test_the_upload_size_limit_is_gradios_max_file_size(assistant, index_copy, tmp_path):
    before = snapshot(index_copy)
    big = tmp_path / "big.txt"
    big.write_text("Big Notes\n\n" + "The harbour is busy. " * 100, encoding="utf-8")
    with running(assistant, Access(), Limits(max_upload_bytes=1000)) as (url, demo):
        assert demo.qa_launch_options["max_file_size"] == 1000
        with pytest.raises(ValueError, match="exceeds the maximum file size of 1000 bytes"):  # the client's check
            Client(url, verbose=False).predict([handle_file(str(big))], "", None, api_name="/add_sources")
        upload = urllib.request.Request(f"{url}gradio_api/upload", _multipart(big),  # and the server's
                                        {"Content-Type": "multipart/form-data; boundary=qa-boundary"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(upload, timeout=30)
        assert refused.value.code == 413 and "maximum allowed size of 1000 bytes" in refused.value.read().decode()
    assert snapshot(index_copy) == before


# --------------------------------------------------------------------------------------------------
# qa serve and python app.py: the same rules


@pytest.fixture()
def launched(monkeypatch, assistant):
    """Capture what ``qa serve`` and ``python app.py`` would serve, without serving it."""
    from qa import memory

    captured = []

    def fake_launch(self, **kwargs):
        captured.append((self, kwargs))
        self.local_url = "http://127.0.0.1:7860/"

    monkeypatch.setattr(memory, "limit_arenas", lambda n: n)
    monkeypatch.setattr(web.Assistant, "load", lambda *a, **k: assistant)
    monkeypatch.setattr(gr.Blocks, "launch", fake_launch)
    monkeypatch.setattr(gr.Blocks, "block_thread", lambda self: None)
    for name in ("QA_READ_ONLY", "QA_EDIT_TOKEN", "QA_EDIT_TOKEN_FILE", "QA_AUTH_FILE", "QA_EDITORS",
                 "GRADIO_SHARE", *Limits.ENV.values()):
        monkeypatch.delenv(name, raising=False)
    return captured


def _app_main():
    spec = importlib.util.spec_from_file_location("qa_app_py", REPO / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_qa_serve_and_app_py_apply_the_same_rules(launched, monkeypatch, index_copy):
    from qa import cli

    for start in (lambda argv: cli.main(["serve", *argv]), _app_main()):
        launched.clear()
        start(["--host", "0.0.0.0", "--port", str(free_port()), "--index", str(index_copy)])
        (demo, kwargs), = launched
        assert kwargs["server_name"] == "0.0.0.0"
        assert write_paths(demo) == [] and kwargs["max_file_size"] == 1 and "auth" not in kwargs

        launched.clear()
        start(["--host", "127.0.0.1", "--index", str(index_copy)])
        (demo, kwargs), = launched
        assert sorted(write_paths(demo)) == ["add_sources", "reload", "remove_source"]
        assert demo.qa_chat.access.mode == "open" and kwargs["max_file_size"] == Limits().max_upload_bytes

        monkeypatch.setenv("QA_EDIT_TOKEN", TOKEN)
        monkeypatch.setenv("QA_MAX_UPLOAD_BYTES", "5000")
        launched.clear()
        start(["--host", "0.0.0.0", "--index", str(index_copy)])
        (demo, kwargs), = launched
        assert demo.qa_chat.access.mode == "editors" and kwargs["max_file_size"] == 5000
        assert sorted(write_paths(demo)) == ["add_sources", "reload", "remove_source"]
        monkeypatch.delenv("QA_EDIT_TOKEN")
        monkeypatch.delenv("QA_MAX_UPLOAD_BYTES")


def test_a_bad_access_setting_stops_qa_serve_with_one_line(launched, monkeypatch, capsys, index_copy):
    from qa import cli

    monkeypatch.setenv("QA_EDIT_TOKEN", "short")
    assert cli.main(["serve", "--host", "0.0.0.0", "--index", str(index_copy)]) == 1
    assert "at least 16 characters" in capsys.readouterr().err
    assert launched == []
