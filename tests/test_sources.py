"""Specification of qa.sources: files, folders and URLs become Source objects, or a clear reason why not."""

from __future__ import annotations

import gzip
import http.server
import threading
import time
from pathlib import Path

import pytest

import qa.sources as sources
from qa.sources import LoadReport, Skipped, SourceError, load_source, load_sources, text_title_and_date
from qa.types import Source, content_id

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "iran-us-enemy-of-my-enemy.txt"


# ------------------------------------------------------------------------------------------------
# Helpers


def pdf_bytes(pages: list[list[str]], title: str | None = None) -> bytes:
    """A minimal valid PDF (correct xref): one page per list of lines; an empty list draws a box, no text."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    n = len(pages)
    page_ids = [4 + 2 * i for i in range(n)]
    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: f"<< /Type /Pages /Kids [{' '.join(f'{i} 0 R' for i in page_ids)}] /Count {n} >>".encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    }
    for pid, lines in zip(page_ids, pages):
        if lines:
            ops = "BT /F1 12 Tf 14 TL 72 720 Td " + " T* ".join(f"({esc(line)}) Tj" for line in lines) + " ET"
        else:  # what a scan looks like to a text extractor: marks, no text operators
            ops = "0 0 1 rg 100 100 300 400 re f"
        stream = ops.encode("latin-1")
        objects[pid] = (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
                        f"/Contents {pid + 1} 0 R >>").encode()
        objects[pid + 1] = b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream"
    info_id = None
    if title is not None:
        info_id = 4 + 2 * n
        objects[info_id] = f"<< /Title ({esc(title)}) >>".encode("latin-1")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for oid in sorted(objects):
        offsets[oid] = len(out)
        out += b"%d 0 obj\n" % oid + objects[oid] + b"\nendobj\n"
    xref = len(out)
    size = max(objects) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for oid in range(1, size):
        out += b"%010d 00000 n \n" % offsets[oid]
    trailer = f"<< /Size {size} /Root 1 0 R" + (f" /Info {info_id} 0 R" if info_id else "") + " >>"
    out += b"trailer\n" + trailer.encode() + b"\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


ARTICLE_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Oil prices climb as talks stall</title>
<style>body { color: red } .STYLE_MARKER {}</style>
<script>var secret = "SCRIPT_MARKER";</script>
</head><body>
<nav><a href="/">Home NAV_MARKER</a> <a href="/world">World</a> <a href="/business">Business</a></nav>
<article>
<h1>Oil prices climb as talks stall</h1>
<p>Oil prices rose on Tuesday after negotiations between the largest producers stalled in Vienna,
traders said, pushing the benchmark to its highest level in three months.</p>
<img src="chart.png" onerror="alert('ONERROR_MARKER')">
<p>Analysts at several banks said the rally could continue if the producers fail to agree on output
quotas before the end of the month, although demand in Asia remains weak.</p>
<p>The energy minister declined to comment on the talks, which are expected to resume next week.</p>
</article>
<script>document.write("SCRIPT2_MARKER")</script>
</body></html>
"""
HTML_MARKERS = ["SCRIPT_MARKER", "SCRIPT2_MARKER", "STYLE_MARKER", "NAV_MARKER", "ONERROR_MARKER", "alert(",
                "color: red", "<p>", "<script"]


def write(path: Path, data: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode(encoding))
    return path


# ------------------------------------------------------------------------------------------------
# Plain text, markdown, rst


def test_shipped_article_has_its_headline_as_title_and_its_dateline_as_date():
    src = load_source(SHIPPED)
    assert src.title == "Iran and US: The Enemy of My Enemy is My Friend"
    assert src.date == "06/25/2014"
    assert src.origin == str(SHIPPED)
    assert src.text == SHIPPED.read_text(encoding="utf-8")
    assert src.id == content_id(src.text)
    assert isinstance(src, Source) and src.added == ""


def test_txt_newlines_are_normalised_and_the_text_is_final(tmp_path):
    path = write(tmp_path / "note.txt", b"\xef\xbb\xbfFirst line title\r\n\r\nBody one.\rBody two.\r\n")
    src = load_source(path)
    assert src.text == "First line title\n\nBody one.\nBody two.\n"  # BOM gone, "\r\n" and "\r" -> "\n"
    assert src.title == "First line title"
    assert src.id == content_id(src.text)
    assert src.origin == str(path)


def test_txt_without_title_line_falls_back_to_file_stem(tmp_path):
    path = write(tmp_path / "only-dates.txt", "2014-06-25\n\n11:41 am\n")
    src = load_source(path)
    assert src.title == "only-dates"
    assert src.date == "2014-06-25"


def test_markdown_heading_gives_the_title_without_hashes(tmp_path):
    path = write(tmp_path / "post.md", "# Markets rally on rate hopes\n\nPublished 2023-05-04\n\nStocks rose.\n")
    src = load_source(path)
    assert src.title == "Markets rally on rate hopes"
    assert src.date == "2023-05-04"
    assert src.text.startswith("# Markets rally")  # markdown is kept as text


def test_rst_underlined_title(tmp_path):
    path = write(tmp_path / "report.rst", "Election results are in\n=======================\n\nThe count ended.\n")
    assert load_source(path).title == "Election results are in"


def test_rst_overlined_title(tmp_path):
    path = write(tmp_path / "report.rst", "==========\nHeadline X\n==========\n\nBody.\n")
    assert load_source(path).title == "Headline X"


@pytest.mark.parametrize("text, title, date", [
    ("06/25/2014 11:41 am ET Updated Aug 25, 2014\n\nIran and US\n\nBody", "Iran and US", "06/25/2014"),
    ("Wednesday, June 25, 2014\nBig news today\nBody", "Big news today", "June 25, 2014"),
    ("Headline first\n25 June 2014\nBody", "Headline first", "25 June 2014"),
    ("# Title *here*\n\ntext", "Title *here*", ""),
    ("---\ntitle: \"Front matter title\"\ndate: 2021-03-04\n---\n# Other heading\n", "Front matter title",
     "2021-03-04"),
    ("Title\n-----\n\n:date: 2020-01-01\n", "Title", "2020-01-01"),
    ("\n\n   \n", "fallback", ""),
    ("A title that mentions 2014 but no date\nBody", "A title that mentions 2014 but no date", ""),
])
def test_text_title_and_date(text, title, date):
    assert text_title_and_date(text, "fallback") == (title, date)


def test_long_first_line_is_cut_to_about_200_characters():
    title, _ = text_title_and_date("word " * 100, "fallback")
    assert len(title) <= 201 and title.endswith("…")


# ------------------------------------------------------------------------------------------------
# Encodings, empty, binary, size


def test_cp1252_text_is_decoded(tmp_path):
    text = "Café crème — “quoted” naïve résumé in Zürich; the façade, déjà vu.\nSecond line: élève, été, cœur.\n"
    src = load_source(write(tmp_path / "western.txt", text, "cp1252"))
    assert src.text == text


def test_latin1_text_is_decoded(tmp_path):
    text = "Über die Straße: Grüße aus München, à bientôt, señor.\n"
    assert load_source(write(tmp_path / "latin.txt", text, "latin-1")).text == text


def test_other_8bit_encodings_are_detected(tmp_path):
    text = "Привет, как дела? Это тест русского текста в кодировке Windows-1251. Москва, новости дня.\n"
    assert load_source(write(tmp_path / "ru.txt", text, "cp1251")).text == text


def test_utf16_with_bom_is_decoded(tmp_path):
    text = "UTF-16 headline\n\nBody text.\n"
    assert load_source(write(tmp_path / "u16.txt", text, "utf-16")).text == text


@pytest.mark.parametrize("data", [b"", b"   \n\t\r\n  "])
def test_empty_or_whitespace_file_is_refused(tmp_path, data):
    with pytest.raises(SourceError, match="empty"):
        load_source(write(tmp_path / "empty.txt", data))


@pytest.mark.parametrize("data", [
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 4,  # NUL bytes
    bytes(range(1, 32)) * 40,  # no NUL, but nothing printable
])
def test_binary_content_with_text_extension_is_refused(tmp_path, data):
    with pytest.raises(SourceError, match="binary file"):
        load_source(write(tmp_path / "image.txt", data))


def test_file_over_max_bytes_is_refused_with_the_limit_and_how_to_raise_it(tmp_path):
    path = write(tmp_path / "big.txt", "x" * 2000)
    with pytest.raises(SourceError) as err:
        load_source(path, max_bytes=1000)
    assert "1,000" in str(err.value) and "max_bytes" in str(err.value)
    assert load_source(path, max_bytes=5000).text == "x" * 2000


def test_unknown_extension_and_missing_file_and_folder(tmp_path):
    with pytest.raises(SourceError, match="unsupported file type .docx"):
        load_source(write(tmp_path / "letter.docx", "hello"))
    with pytest.raises(SourceError, match="no such file"):
        load_source(tmp_path / "missing.txt")
    with pytest.raises(SourceError, match="folder"):
        load_source(tmp_path)


# ------------------------------------------------------------------------------------------------
# HTML and PDF


def test_html_keeps_main_text_and_drops_scripts_styles_navigation_and_handlers(tmp_path):
    src = load_source(write(tmp_path / "page.html", ARTICLE_HTML))
    assert "Oil prices rose on Tuesday" in src.text
    assert "expected to resume next week" in src.text
    for marker in HTML_MARKERS:
        assert marker not in src.text, marker
    assert src.title == "Oil prices climb as talks stall"
    assert src.origin == str(tmp_path / "page.html")
    assert "\r" not in src.text and src.id == content_id(src.text)


def test_html_declared_charset_is_honoured(tmp_path):
    html = ("<html><head><meta http-equiv='Content-Type' content='text/html; charset=iso-8859-1'>"
            "<title>Caf\xe9 news</title></head><body><article><p>Le caf\xe9 est ouvert \xe0 Paris depuis "
            "ce matin, et les clients sont nombreux \xe0 venir go\xfbter la nouvelle cr\xe8me.</p></article>"
            "</body></html>")
    src = load_source(write(tmp_path / "cafe.htm", html, "latin-1"))
    assert "Le café est ouvert à Paris" in src.text
    assert src.title == "Café news"


def test_html_without_any_text_is_refused(tmp_path):
    with pytest.raises(SourceError, match="no main text"):
        load_source(write(tmp_path / "blank.html",
                          "<html><head><script>var a = 1;</script></head><body></body></html>"))


def test_pdf_text_layer_is_read(tmp_path):
    data = pdf_bytes([["Quarterly report shows growth", "Revenue rose 12 percent in the quarter."],
                      ["Second page (with parentheses) continues."]])
    src = load_source(write(tmp_path / "report.pdf", data))
    assert "Revenue rose 12 percent in the quarter." in src.text
    assert "Second page (with parentheses) continues." in src.text
    assert src.text.index("Revenue") < src.text.index("Second page")
    assert src.title == "Quarterly report shows growth"
    assert src.id == content_id(src.text)


def test_pdf_metadata_title_wins(tmp_path):
    src = load_source(write(tmp_path / "r.pdf", pdf_bytes([["Body line"]], title="Annual Review 2023")))
    assert src.title == "Annual Review 2023"


def test_pdf_without_text_layer_asks_for_ocr(tmp_path):
    with pytest.raises(SourceError, match=r"no text layer \(scanned\?\) — run OCR first"):
        load_source(write(tmp_path / "scan.pdf", pdf_bytes([[], []])))


def test_damaged_pdf_is_refused(tmp_path):
    with pytest.raises(SourceError, match="not a readable PDF"):
        load_source(write(tmp_path / "broken.pdf", b"%PDF-1.4\nthis is not really a pdf\n"))


# ------------------------------------------------------------------------------------------------
# Folders and batches


def test_folder_is_read_recursively_in_sorted_order_filtered_by_glob(tmp_path):
    write(tmp_path / "b.md", "# B\n\nb")
    write(tmp_path / "a.txt", "A\n\na")
    write(tmp_path / "sub" / "c.md", "# C\n\nc")
    write(tmp_path / ".hidden" / "d.md", "# D\n\nd")
    write(tmp_path / ".secret.md", "# E\n\ne")
    report = load_sources([tmp_path], glob="*.md")
    assert [s.title for s in report.sources] == ["B", "C"]
    assert report.skipped == []
    report = load_sources([tmp_path])
    assert [Path(s.origin).relative_to(tmp_path).as_posix() for s in report.sources] == ["a.txt", "b.md", "sub/c.md"]
    assert load_sources([tmp_path], glob="sub/*").sources[0].title == "C"


def test_mixed_batch_loads_the_good_and_skips_each_bad_one_with_its_reason(tmp_path):
    folder = tmp_path / "batch"
    write(folder / "good.txt", "Good headline\n\nSome text.\n")
    write(folder / "page.html", ARTICLE_HTML)
    write(folder / "western.txt", "Caf\xe9 au lait \u2014 na\xefve r\xe9sum\xe9.\n", "cp1252")
    write(folder / "empty.txt", "")
    write(folder / "binary.txt", b"\x00\x01\x02\x03" * 100)
    write(folder / "photo.jpg", b"\xff\xd8\xff\xe0" + b"\x00" * 50)
    write(folder / "big.md", "# Big\n\n" + "y" * 5000)
    write(folder / "doc.pdf", pdf_bytes([["PDF headline", "PDF body."]]))
    write(folder / "scan.pdf", pdf_bytes([[]]))
    report = load_sources([folder, tmp_path / "nope.txt", "ftp://example.com/x.txt"], max_bytes=4000)
    assert isinstance(report, LoadReport)
    assert sorted(Path(s.origin).name for s in report.sources) == ["doc.pdf", "good.txt", "page.html", "western.txt"]
    assert next(s for s in report.sources if s.origin.endswith("western.txt")).text == "Café au lait — naïve résumé.\n"
    reasons = {Path(s.origin).name: s.reason for s in report.skipped}
    assert set(reasons) == {"empty.txt", "binary.txt", "photo.jpg", "big.md", "scan.pdf", "nope.txt", "x.txt"}
    assert "empty" in reasons["empty.txt"]
    assert "binary file" in reasons["binary.txt"]
    assert "unsupported file type .jpg" in reasons["photo.jpg"]
    assert "max_bytes" in reasons["big.md"]
    assert "no text layer" in reasons["scan.pdf"]
    assert "no such file" in reasons["nope.txt"]
    assert "ftp" in reasons["x.txt"]
    assert all(isinstance(s, Skipped) and s.reason for s in report.skipped)
    assert not any(s.reason.startswith(s.origin) for s in report.skipped)  # the origin is not repeated


def test_same_file_given_twice_is_read_once_and_empty_folder_is_reported(tmp_path):
    path = write(tmp_path / "docs" / "a.txt", "A\n\nbody")
    (tmp_path / "empty").mkdir()
    report = load_sources([path, tmp_path / "docs", str(path)])
    assert [s.origin for s in report.sources] == [str(path)]
    report = load_sources([tmp_path / "empty"])
    assert report.sources == [] and "no files match" in report.skipped[0].reason


# ------------------------------------------------------------------------------------------------
# URLs (a local server on 127.0.0.1; allow_private=True since it is loopback)

PDF_BODY = pdf_bytes([["Served PDF headline", "Served PDF body."]])
PLAIN_BODY = "Plain headline\r\n\r\nCaf\xe9 body text.\r\n".encode("cp1252")


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        port = self.server.server_address[1]
        routes = {
            "/article.html": lambda: self._send(200, ARTICLE_HTML.encode(),
                                                {"Content-Type": "text/html; charset=utf-8"}),
            "/plain": lambda: self._send(200, PLAIN_BODY, {"Content-Type": "text/plain; charset=windows-1252"}),
            "/doc": lambda: self._send(200, PDF_BODY, {"Content-Type": "application/pdf"}),
            "/gz": lambda: self._send(200, gzip.compress(b"Zipped headline\n\nZipped body.\n"),
                                      {"Content-Type": "text/plain", "Content-Encoding": "gzip"}),
            "/redirect": lambda: self._send(302, headers={"Location": "/article.html#top"}),
            "/loop": lambda: self._send(301, headers={"Location": "/loop"}),
            "/to-file": lambda: self._send(302, headers={"Location": "file:///etc/passwd"}),
            "/to-other-host": lambda: self._send(302, headers={"Location": f"http://127.0.0.2:{port}/article.html"}),
            "/big": lambda: self._send(200, b"z" * 50_000, {"Content-Type": "text/plain", "Content-Length": "50000"}),
            "/big-unsized": lambda: self._send(200, b"z" * 50_000, {"Content-Type": "text/plain"}),
            "/image": lambda: self._send(200, b"\x89PNG\r\n", {"Content-Type": "image/png"}),
            "/slow": lambda: (time.sleep(1.0), self._send(200, b"late", {"Content-Type": "text/plain"})),
        }
        if self.path.startswith("/hop/"):  # /hop/N redirects to /hop/N+1, forever
            return self._send(302, headers={"Location": f"/hop/{int(self.path.rsplit('/', 1)[1]) + 1}"})
        route = routes.get(self.path)
        if route is None:
            return self._send(404, b"not found", {"Content-Type": "text/plain"})
        route()


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request, client_address) -> None:  # a client that gave up (timeout, size cap)
        pass


@pytest.fixture(scope="module")
def server():
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_url_html_page_is_extracted_and_origin_is_the_url(server):
    src = load_source(f"{server}/article.html", allow_private=True)
    assert src.origin == f"{server}/article.html"
    assert src.title == "Oil prices climb as talks stall"
    assert "Oil prices rose on Tuesday" in src.text
    for marker in HTML_MARKERS:
        assert marker not in src.text, marker


def test_url_content_type_decides_text_with_its_charset_and_pdf(server):
    plain = load_source(f"{server}/plain", allow_private=True)
    assert plain.text == "Plain headline\n\nCafé body text.\n" and plain.title == "Plain headline"
    pdf = load_source(f"{server}/doc", allow_private=True)
    assert "Served PDF body." in pdf.text and pdf.title == "Served PDF headline"
    assert load_source(f"{server}/gz", allow_private=True).text == "Zipped headline\n\nZipped body.\n"


def test_url_redirect_is_followed_and_origin_is_the_final_url(server):
    src = load_source(f"{server}/redirect", allow_private=True)
    assert src.origin == f"{server}/article.html"


def test_url_redirect_loop_and_too_many_redirects_are_refused(server):
    with pytest.raises(SourceError, match="redirect loop"):
        load_source(f"{server}/loop", allow_private=True)
    with pytest.raises(SourceError, match="more than 5 redirects"):
        load_source(f"{server}/hop/0", allow_private=True)


def test_url_redirect_to_file_scheme_is_refused(server):
    with pytest.raises(SourceError, match=r"redirected to file:///etc/passwd.*file: URLs are refused"):
        load_source(f"{server}/to-file", allow_private=True)


def test_url_timeout(server):
    started = time.monotonic()
    with pytest.raises(SourceError, match="within 0.2 s"):
        load_source(f"{server}/slow", allow_private=True, timeout=0.2)
    assert time.monotonic() - started < 0.9


def test_url_size_cap_while_streaming(server):
    for path in ("/big", "/big-unsized"):
        with pytest.raises(SourceError, match="max_bytes"):
            load_source(f"{server}{path}", allow_private=True, max_bytes=10_000)


def test_url_unsupported_type_and_http_error(server):
    with pytest.raises(SourceError, match="unsupported content type image/png"):
        load_source(f"{server}/image", allow_private=True)
    with pytest.raises(SourceError, match="HTTP 404"):
        load_source(f"{server}/missing", allow_private=True)


def test_loopback_is_refused_by_default(server):
    port = server.rsplit(":", 1)[1]
    for url in (f"{server}/article.html", f"http://localhost:{port}/article.html"):
        with pytest.raises(SourceError, match="loopback.*allow_private=True"):
            load_source(url)


def test_every_redirect_target_is_checked(server, monkeypatch):
    # Pretend 127.0.0.1 is public and 127.0.0.2 private: the first hop passes, the redirect must not.
    monkeypatch.setattr(sources, "_address_refusal", lambda address: "private" if address == "127.0.0.2" else None)
    assert load_source(f"{server}/article.html").title == "Oil prices climb as talks stall"
    with pytest.raises(SourceError, match=r"private address \(127\.0\.0\.2\)"):
        load_source(f"{server}/to-other-host")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "FILE:///etc/hosts", "ftp://example.com/a.txt",
                                 "gopher://example.com/", "data:text/plain,hello"])
def test_non_http_schemes_are_refused(url):
    with pytest.raises(SourceError, match="only http:// and https://"):
        load_source(url, allow_private=True)


@pytest.mark.parametrize("address, refused", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("10.1.2.3", "private"), ("192.168.0.10", "private"),
    ("172.16.5.4", "private"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("0.0.0.0", "unspecified"), ("::ffff:127.0.0.1", "loopback"), ("100.64.0.1", "non-public"),
    ("224.0.0.1", "multicast"), ("8.8.8.8", None), ("2606:4700:4700::1111", None),
])
def test_address_policy(address, refused):
    assert sources._address_refusal(address) == refused


def test_bad_url_in_a_batch_is_skipped_and_the_rest_loads(server, tmp_path):
    good = write(tmp_path / "good.txt", "Good\n\ntext")
    report = load_sources([f"{server}/missing", good, f"{server}/article.html"], allow_private=True)
    assert [s.origin for s in report.sources] == [str(good), f"{server}/article.html"]
    assert [(s.origin, "HTTP 404" in s.reason) for s in report.skipped] == [(f"{server}/missing", True)]
