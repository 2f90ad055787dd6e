"""Issue #23: ``qa index build|add --engine ray`` writes the index the local build writes.

On a local Ray of 2 CPUs started once for this module (skipped, with the reason, where Ray is not installed or
cannot start), with the real embedder over a small corpus of nine sources: the same sources, passages and ids,
vectors equal within 1e-5, the same FAISS type and manifest; ``qa index add`` makes the same decisions; a worker
killed mid-build is restarted by Ray and the build is still equal; a build that fails saves nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ARTICLE
from qa import building, cli
from qa import index as store
from qa.config import DEFAULT_EMBEDDER
from qa.ray_engine import RayEngine, RayError, add_sources
from qa.types import content_id

# Ray Data's own context copies its deprecated settings when a dataset runs.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")

ADDED = "2024-01-02T03:04:05Z"  # one time for every source, so that builds made seconds apart compare equal
EXTRA = {
    "harbour.txt": "Harbour Report\n\nThe new container terminal in Port Aldana opened on 3 March. It was built by "
                   "the engineering firm Korvell Marine at a cost of 41 million euros.\n",
    "festival.md": "# Lakeside Jazz Festival\n\nThe Lakeside Jazz Festival is held every July in the town of Mirren. "
                   "This year the opening concert was given by the pianist Elena Sorvino.\n",
    "election.html": "<html><head><title>Council vote in Brelford</title></head><body><article><h1>Council vote in "
                     "Brelford</h1><p>The Brelford city council elected Tomas Hadley as its new mayor on Tuesday. "
                     "Hadley, a former schoolteacher, won 27 of the 45 votes.</p></article></body></html>",
}


def write_corpus(folder: Path) -> Path:
    """The shipped article, its body cut into five shorter articles, and three small documents: 9 sources."""
    folder.mkdir(parents=True, exist_ok=True)
    text = ARTICLE.read_text(encoding="utf-8")
    (folder / "article.txt").write_text(text, encoding="utf-8")
    paragraphs = [p for p in text.split("\n\n") if len(p.split()) > 20]
    for k in range(5):
        part = paragraphs[k::5]
        (folder / f"part-{k}.txt").write_text(f"Iran and the US, part {k + 1}\n\n" + "\n\n".join(part) + "\n",
                                              encoding="utf-8")
    for name, body in EXTRA.items():
        (folder / name).write_text(body, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("ray-corpus"))


@pytest.fixture(scope="module")
def sources(corpus):
    from qa.sources import load_sources

    report = load_sources([corpus])
    assert not report.skipped
    return [dataclasses.replace(s, added=ADDED) for s in report.sources]


@pytest.fixture(scope="module")
def local_index(sources, embedder):
    """The local build of the corpus, the reference of every build on Ray."""
    return building.build(sources, embedder)


@pytest.fixture(scope="module")
def ray_session():
    """A local Ray with 2 CPUs for the whole module; every engine below uses it, and it is stopped at the end."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'articleqa[ray]')")
    session = RayEngine(DEFAULT_EMBEDDER, num_cpus=2, object_store_memory=200 * 2**20)
    try:
        session.start()
    except RayError as exc:
        pytest.skip(f"Ray cannot start here: {exc}")
    yield session
    session.close()


def ray_engine(**options) -> RayEngine:
    return RayEngine(DEFAULT_EMBEDDER, **{"workers": 2, "sources_per_batch": 2, **options})


def assert_same_index(a: store.Index, b: store.Index, *, same_added: bool = True) -> None:
    assert list(a.sources) == list(b.sources)
    for sid in a.sources:
        x, y = a.sources[sid], b.sources[sid]
        if not same_added:
            x, y = dataclasses.replace(x, added=""), dataclasses.replace(y, added="")
        assert x == y
    assert a.passages == b.passages
    assert (a.embedder, a.dimension, a.chunking) == (b.embedder, b.dimension, b.chunking)
    assert type(a.vectors) is type(b.vectors)
    va, vb = building._vectors_of(a), building._vectors_of(b)
    assert va.shape == vb.shape == (len(a.passages), a.dimension)
    np.testing.assert_allclose(va, vb, atol=1e-5, rtol=0)


def manifest_without_times(path: Path) -> dict:
    manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
    manifest.pop("built")
    manifest["files"].pop("vectors.faiss")  # equal within 1e-5, not byte for byte
    for meta in manifest["sources"]:
        meta.pop("added")
    return manifest


# ------------------------------------------------------------------------------------------------
# The engine, in process


def test_a_build_on_ray_equals_the_local_build(ray_session, sources, embedder, local_index, tmp_path):
    local = local_index
    engine = ray_engine()
    on_ray = building.build(sources, embedder, engine=engine)
    assert engine.last_run["workers"] == 2 and engine.last_run["sources"] == len(sources) == 9
    assert len(on_ray) == len(local) > 2 * len(sources)
    assert_same_index(local, on_ray)
    store.save(local, tmp_path / "local")
    store.save(on_ray, tmp_path / "ray")
    assert (tmp_path / "local" / "passages.json").read_bytes() == (tmp_path / "ray" / "passages.json").read_bytes()
    assert manifest_without_times(tmp_path / "local") == manifest_without_times(tmp_path / "ray")
    loaded = store.load(tmp_path / "ray", embedder=embedder.name, dimension=embedder.dimension)
    assert_same_index(local, loaded)


def test_adding_on_ray_makes_the_local_decisions_and_the_same_index(ray_session, sources, embedder):
    base = building.build(sources[:6], embedder)
    changed = dataclasses.replace(sources[0], text=sources[0].text + "\nA closing line added later.\n")
    changed = dataclasses.replace(changed, id=content_id(changed.text))
    new = [sources[1], changed, *sources[6:]]  # unchanged, replaced (same origin, new text), added
    local, local_report = building.add(base, new, embedder)
    on_ray, ray_report = building.add(base, new, embedder, engine=ray_engine(workers=1))
    assert ray_report == local_report
    assert local_report["unchanged"] == [sources[1].origin] and local_report["replaced"] == [sources[0].origin]
    assert_same_index(local, on_ray, same_added=False)  # the new sources are stamped when added


def test_a_worker_killed_mid_build_is_restarted_and_the_build_is_still_equal(ray_session, sources, embedder,
                                                                             local_index, tmp_path):
    from qa.ray_engine import _ChunkEmbedWorker

    marker = str(tmp_path / "killed-once")

    class DiesOnce(_ChunkEmbedWorker):  # defined here, so Ray ships it to the workers by value
        def __call__(self, batch):
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return super().__call__(batch)
            os._exit(1)  # the first batch kills its worker process

    engine = ray_engine(workers=1, sources_per_batch=3)  # the one worker dies on its first batch of three
    engine.worker_class = DiesOnce
    on_ray = building.build(sources, embedder, engine=engine)
    assert Path(marker).exists()
    assert_same_index(local_index, on_ray)


def test_a_build_that_fails_on_ray_saves_nothing(ray_session, corpus, embedder, tmp_path):
    from qa.ray_engine import _ChunkEmbedWorker

    class Fails(_ChunkEmbedWorker):
        def __call__(self, batch):
            raise ValueError("the embedder broke")

    path = tmp_path / "index"
    store.save(building.build([], embedder), path)
    before = {f.relative_to(path): f.read_bytes() for f in path.rglob("*") if f.is_file()}
    engine = ray_engine(workers=1)
    engine.worker_class = Fails
    with pytest.raises(RayError, match="the embedder broke.*nothing was saved"):
        add_sources(path, [str(corpus)], engine)
    assert {f.relative_to(path): f.read_bytes() for f in path.rglob("*") if f.is_file()} == before
    assert not list(tmp_path.glob(".index.new-*"))
    with store.write_lock(path):  # released
        pass


def test_the_workers_must_load_the_index_embedder(embedder, sources):
    engine = RayEngine("another-embedder")
    with pytest.raises(RayError, match="another-embedder"):
        engine(sources, embedder, {"chunk_tokens": 120, "overlap_tokens": 40})


def test_without_ray_the_engine_says_how_to_install_it(monkeypatch, sources, embedder):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayError, match=r"pip install 'articleqa\[ray\]'"):
        RayEngine(DEFAULT_EMBEDDER).start()


# ------------------------------------------------------------------------------------------------
# The command line


def qa(*argv: str) -> int:
    return cli.main(list(argv))


def test_qa_index_build_and_add_with_engine_ray_write_the_local_index(ray_session, corpus, tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    extra = tmp_path / "extra.txt"
    extra.write_text("Observatory Notes\n\nThe Halvard Observatory was opened in 1974 by the astronomer Ingrid "
                     "Valen. Its main telescope has a mirror 2.4 metres wide.\n", encoding="utf-8")
    outputs = {}
    for engine in ("local", "ray"):
        path = tmp_path / engine
        assert qa("index", "build", str(corpus), "--index", str(path), "-q", "--engine", engine,
                  *(["--ray-workers", "1"] if engine == "ray" else [])) == 0
        built = capsys.readouterr().out
        assert qa("index", "add", str(extra), str(corpus / "article.txt"), "--index", str(path), "-q",
                  "--engine", engine) == 0
        added = capsys.readouterr().out
        outputs[engine] = [line.rsplit(" (", 1)[0].replace(str(path), "INDEX") for line in (built + added).splitlines()]
    assert outputs["ray"] == outputs["local"]
    assert f"added     {extra}" in outputs["ray"] and f"unchanged {corpus / 'article.txt'}" in outputs["ray"]
    assert outputs["ray"][-1] == "1 source added or replaced, 0 skipped, 10 sources and " \
        f"{len(store.load(tmp_path / 'ray'))} passages in INDEX"
    local, on_ray = store.load(tmp_path / "local"), store.load(tmp_path / "ray")
    assert_same_index(local, on_ray, same_added=False)
    assert manifest_without_times(tmp_path / "local") == manifest_without_times(tmp_path / "ray")


def test_qa_index_build_on_ray_waits_for_no_other_writer(ray_session, corpus, tmp_path, capsys):
    path = tmp_path / "index"
    assert qa("index", "build", str(corpus / "harbour.txt"), "--index", str(path), "-q") == 0
    before = (path / "manifest.json").read_bytes()
    with store.write_lock(path):
        assert qa("index", "build", str(corpus), "--index", str(path), "-q", "--engine", "ray") == 1
    assert "another process is writing the index" in capsys.readouterr().err
    assert (path / "manifest.json").read_bytes() == before


def test_ray_options_need_engine_ray(corpus, tmp_path, capsys):
    assert qa("index", "build", str(corpus), "--index", str(tmp_path / "i"), "--ray-address", "auto") == 1
    assert "--ray-address and --ray-workers go with --engine ray" in capsys.readouterr().err
    assert not (tmp_path / "i").exists()
