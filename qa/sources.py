"""Read files, folders and web pages into :class:`qa.types.Source` objects.

One entry point per use: :func:`load_source` reads one file or URL and raises :class:`SourceError`;
:func:`load_sources` reads many (folders included) and reports each one it could not read in
:attr:`LoadReport.skipped` instead of raising.

Formats (by file extension, or by Content-Type for URLs):

* ``.txt``, ``.md``, ``.rst``: kept as text (markdown/rst markup is not rendered).
* ``.html``, ``.htm``: the main text only, extracted by ``trafilatura`` (scripts, styles and
  navigation dropped); the title and date come from the page's metadata.
* ``.pdf``: the text layer, by ``pypdf``; a PDF without one must be OCR'd first.

The returned ``Source.text`` is final: every offset in the index refers to it. It is the decoded text
with a leading byte-order mark removed and newlines normalised to ``"\\n"``.

A file's ``origin`` is ``str(Path(ref))``: the path as the user gave it (relative paths stay relative),
or, for a file found in a folder, the folder as given joined with the file's relative path.
A URL's origin is the final URL after redirects.

Web pages are fetched with the standard library, without proxies. The host is resolved and every
address it resolves to must be public (not loopback, private, link-local, reserved, ...) unless
``allow_private=True``; the connection then goes to the checked address, and each redirect target is
checked the same way (at most 5 redirects, http and https only).
"""

from __future__ import annotations

import http.client
import io
import ipaddress
import logging
import re
import socket
import ssl
import time
import unicodedata
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from html import unescape
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit

from qa.types import Source

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 1024 * 1024
"""Default size limit of one source, in bytes (20 MB): files are checked before reading, downloads while streaming."""

MAX_REDIRECTS = 5
MAX_TITLE_CHARS = 200

EXTENSIONS: dict[str, str] = {".txt": "text", ".md": "text", ".rst": "text",
                              ".html": "html", ".htm": "html", ".pdf": "pdf"}
"""Supported file extensions and the extractor each one uses."""

_USER_AGENT = "articleqa/0.1 (+https://pypi.org/project/articleqa)"
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_PDF_TYPES = {"application/pdf", "application/x-pdf"}
_UNTYPED = {"application/octet-stream", "binary/octet-stream", "application/unknown"}
_REDIRECTS = {301, 302, 303, 307, 308}
_URL_LIKE = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|(?:file|data|javascript|ftp|mailto|about|blob|jar):)", re.I)
_LIGATURES = str.maketrans({"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
                            "\ufb05": "st", "\ufb06": "st"})


class SourceError(Exception):
    """A source could not be read; the message says what went wrong and what to do."""


@dataclass(frozen=True)
class Skipped:
    """A source that could not be read.

    Attributes:
        origin: the path or URL as given (for a file found in a folder, its path).
        reason: why it was skipped, and what to do about it.
    """

    origin: str
    reason: str


@dataclass
class LoadReport:
    """What :func:`load_sources` read and what it skipped.

    Attributes:
        sources: the sources read, in the order of the references (files of a folder sorted by path).
        skipped: the references that could not be read, each with its reason (which does not repeat
            the origin).
        changes: filled in by the callers that index the sources (added/unchanged/replaced origins).
    """

    sources: list[Source]
    skipped: list[Skipped]
    changes: dict[str, list[str]] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Public API


def load_source(ref: str | Path, *, allow_private: bool = False, max_bytes: int = MAX_BYTES,
                timeout: float = 10.0) -> Source:
    """Read one file or web page.

    Args:
        ref: a file path, or an ``http://`` / ``https://`` URL (a ``str``; a ``Path`` is always a file).
        allow_private: allow URLs whose host is a loopback, private, link-local or reserved address.
        max_bytes: refuse files and downloads larger than this.
        timeout: seconds a web page may take in all (connecting, redirects, download).

    Returns:
        The source, with ``id``, ``title``, ``origin``, ``text`` and ``date`` set (``added`` left empty).

    Raises:
        SourceError: the reference cannot be read (missing, unsupported, empty, binary, too big,
            refused URL, network error, PDF without text layer, ...).
    """
    if isinstance(ref, str) and not ref.strip():
        raise SourceError("empty reference: give a file, folder or URL")
    if isinstance(ref, str) and _URL_LIKE.match(ref.strip()):
        return _load_url(ref.strip(), allow_private=allow_private, max_bytes=max_bytes, timeout=timeout)
    path = Path(ref)
    if path.is_dir():
        raise SourceError(f"{path}: is a folder; give its files, or use load_sources() which reads folders")
    return _load_file(path, str(path), max_bytes)


def load_sources(refs: list[str | Path], *, glob: str = "**/*", allow_private: bool = False,
                 max_bytes: int = MAX_BYTES, timeout: float = 10.0) -> LoadReport:
    """Read files, folders and web pages; one that cannot be read is skipped with its reason.

    Folders are read recursively: their files matching ``glob`` (a :meth:`pathlib.Path.glob` pattern
    relative to the folder; one without ``/`` such as ``*.md`` matches at any depth), in sorted path
    order. Hidden files and folders (name starting with ``.``) are left out silently; files of an
    unsupported type are reported as skipped. The same file given twice is read once.

    Args:
        refs: paths (files or folders) and URLs.
        glob: which files of a folder to read.
        allow_private: allow URLs on loopback, private, link-local or reserved addresses.
        max_bytes: size limit per source.
        timeout: seconds each web page may take.

    Returns:
        The sources read and the references skipped. Never raises for one bad reference.
    """
    if isinstance(refs, (str, Path)):
        refs = [refs]
    report = LoadReport([], [])
    seen: set[str] = set()

    def skip(origin: str, message: str) -> None:
        # Skipped.reason goes without the "origin: " that starts SourceError messages (it is in .origin).
        reason = message[len(origin) + 2:] if origin and message.startswith(f"{origin}: ") else message
        report.skipped.append(Skipped(origin, reason))

    def attempt(ref: str | Path, origin: str) -> None:
        try:
            report.sources.append(load_source(ref, allow_private=allow_private, max_bytes=max_bytes,
                                              timeout=timeout))
            log.info("read %s", origin)
        except SourceError as exc:
            skip(origin, str(exc))
            log.info("skipped %s", exc)
        except Exception as exc:  # noqa: BLE001 - one bad source must not stop the others
            log.exception("unexpected error reading %s", origin)
            skip(origin, f"unexpected error ({type(exc).__name__}: {exc}); please report it with the file")

    for ref in refs:
        if isinstance(ref, str) and (not ref.strip() or _URL_LIKE.match(ref.strip())):
            if ref.strip() not in seen or not ref.strip():
                seen.add(ref.strip())
                attempt(ref, ref.strip())
            continue
        path = Path(ref)
        try:
            is_dir = path.is_dir()
            files, unsupported = _folder_files(path, glob) if is_dir else ([], [])
        except (SourceError, OSError, ValueError) as exc:
            skip(str(path), str(exc))
            continue
        if not is_dir:
            if _first_time(path, seen):
                attempt(path, str(path))
            continue
        for file in unsupported:
            skip(str(file), _unsupported_reason(file))
        if not files and not unsupported:
            skip(str(path), f"no files match {glob!r} in this folder")
        for file in files:
            if _first_time(file, seen):
                attempt(file, str(file))
    return report


def text_title_and_date(text: str, fallback: str) -> tuple[str, str]:
    """The title and date a plain text carries.

    The title is the first non-empty line that is not only a date/time line, a markup line (``---``,
    ``====``, rst directives) or an image; a markdown ``# Heading`` loses its ``#``; a YAML front matter
    ``title:`` wins. It is cut to about 200 characters. The date is the first date written in the first
    few lines (``06/25/2014``, ``2014-06-25``, ``June 25, 2014``, ``25 June 2014``...), as written, or a
    front matter / rst ``date:`` field.

    Args:
        text: the text.
        fallback: the title to use when the text has no title line (for example the file name stem).

    Returns:
        ``(title, date)``; the date is ``""`` when none is found.
    """
    lines = text.split("\n")
    title, date = "", ""
    if lines and lines[0].strip() == "---":  # YAML front matter
        for i, line in enumerate(lines[1:60], 1):
            if line.strip() in {"---", "..."}:
                for meta in lines[1:i]:
                    key, _, value = meta.partition(":")
                    value = value.strip().strip("'\"").strip()
                    if key.strip().lower() == "title" and value and not title:
                        title = value
                    elif key.strip().lower() == "date" and value and not date:
                        date = value
                lines = lines[i + 1:]
                break
    scanned = 0
    for line in lines:
        stripped = line.strip()
        if not stripped:
            continue
        scanned += 1
        if scanned > 8 or (title and date):
            break
        field_match = re.match(r"^:(date|published|updated):\s*(\S.*)$", stripped, re.I)  # rst field list
        if field_match:
            date = date or field_match.group(2).strip()
            continue
        found = _DATE_RE.search(stripped)
        if found and not date and scanned <= 5:
            date = found.group(0)
        if title or _is_markup_line(stripped) or _is_date_line(stripped):
            continue
        title = _clean_title(stripped)
    return _shorten(title) if title else fallback, date


# --------------------------------------------------------------------------------------------------
# Title and date helpers

_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_DATE_RE = re.compile(
    r"(?<![\w/.-])(?:"
    r"\d{4}-\d{1,2}-\d{1,2}"
    r"|\d{4}/\d{1,2}/\d{1,2}"
    r"|\d{1,2}[/.-]\d{1,2}[/.-](?:\d{4}|\d{2})"
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}"
    rf"|{_MONTH},?\s+\d{{4}}"
    r")(?![\w/-])", re.I)
DATE_RE = _DATE_RE  # dates as news pages write them (used by qa.metadata)
_TIME_RE = re.compile(r"\b\d{1,2}[:.]\d{2}(?::\d{2})?\s*(?:[ap]\.?m\.?)?(?![\w])", re.I)
_DATE_FILLER_RE = re.compile(
    r"\b(?:updated|published|posted|last|modified|date[d]?|on|at|and|am|pm|a\.m|p\.m|"
    r"[ecmp][sd]?t|gmt|utc|bst|cest?|z|"
    r"mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:r(?:s(?:day)?)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)\b",
    re.I)


def _is_date_line(line: str) -> bool:
    """Whether ``line`` holds nothing but dates, times and words like "Updated"."""
    rest, dates = _DATE_RE.subn(" ", line)
    rest, times = _TIME_RE.subn(" ", rest)
    if not dates and not times:
        return False
    rest = _DATE_FILLER_RE.sub(" ", rest)
    return not re.search(r"[^\W_]", rest)


def _is_markup_line(line: str) -> bool:
    """Underlines, rules, rst directives/comments, images and HTML comments: never a title."""
    if re.fullmatch(r"([=\-~^*#+_`:.'\"<>])\1*", line.replace(" ", "")):
        return True
    return line.startswith((".. ", "![", "<!--", "[//]:")) or line in {"..", "+++", "```"}


def _clean_title(line: str) -> str:
    line = re.sub(r"^#{1,6}\s+", "", line)
    line = re.sub(r"\s+#+$", "", line)
    line = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line)  # markdown link -> its text
    if line[:2] in {"**", "__"} and line[-2:] == line[:2]:
        line = line[2:-2]
    return line.strip() or line


def _shorten(title: str) -> str:
    title = " ".join(title.split())
    if len(title) <= MAX_TITLE_CHARS:
        return title
    cut = title[:MAX_TITLE_CHARS]
    if " " in cut[MAX_TITLE_CHARS // 2:]:
        cut = cut[:cut.rindex(" ")]
    return cut.rstrip(" ,;:-") + "…"


# --------------------------------------------------------------------------------------------------
# Files and folders


def _first_time(path: Path, seen: set[str]) -> bool:
    try:
        key = str(path.resolve())
    except OSError:
        key = str(path)
    if key in seen:
        return False
    seen.add(key)
    return True


def _unsupported_reason(path: Path) -> str:
    ext = path.suffix.lower() or "(no extension)"
    return (f"{path}: unsupported file type {ext}; supported: {', '.join(sorted(EXTENSIONS))} "
            "(convert it to one of these)")


def _folder_files(folder: Path, glob: str) -> tuple[list[Path], list[Path]]:
    """The supported and unsupported non-hidden files of ``folder`` matching ``glob``, sorted by path."""
    pattern = glob if ("/" in glob or glob.startswith("**")) else f"**/{glob}"
    try:
        matches = {p for p in folder.glob(pattern)}
    except (ValueError, OSError, NotImplementedError) as exc:  # bad or absolute pattern, unreadable folder
        raise SourceError(f"{folder}: cannot list with glob {glob!r} ({exc}); give a relative pattern such as "
                          "'**/*.md'") from exc
    supported, unsupported = [], []
    for path in sorted(matches, key=lambda p: p.relative_to(folder).as_posix()):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        (supported if path.suffix.lower() in EXTENSIONS else unsupported).append(path)
    log.debug("%s: %d supported and %d unsupported files match %r", folder, len(supported), len(unsupported), glob)
    return supported, unsupported


def _load_file(path: Path, origin: str, max_bytes: int) -> Source:
    kind = EXTENSIONS.get(path.suffix.lower())
    if not path.exists():
        hint = ("; for a web page give the full URL, with http:// or https://"
                if re.match(r"^(www\.|[\w-]+\.(com|org|net|io|co|uk|de|fr)\b)", origin) else "")
        raise SourceError(f"{origin}: no such file or folder{hint}")
    if not path.is_file():
        raise SourceError(f"{origin}: not a regular file")
    if kind is None:
        raise SourceError(_unsupported_reason(path))
    data = _read_bytes(path, origin, max_bytes)
    return _extract(data, kind, origin, path.stem)


def _too_big(origin: str, size: int | None, max_bytes: int) -> SourceError:
    what = f"{size:,} bytes" if size is not None else "more than that"
    return SourceError(f"{origin}: too big ({what}; the limit is {max_bytes:,} bytes); raise the limit with "
                       "max_bytes=N, or split the document")


def _read_bytes(path: Path, origin: str, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise _too_big(origin, size, max_bytes)
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except PermissionError as exc:
        raise SourceError(f"{origin}: permission denied; check the file's permissions") from exc
    except OSError as exc:
        raise SourceError(f"{origin}: cannot read ({exc.strerror or exc})") from exc
    if len(data) > max_bytes:
        raise _too_big(origin, None, max_bytes)
    return data


# --------------------------------------------------------------------------------------------------
# Extraction: bytes of a known kind -> Source


def _extract(data: bytes, kind: str, origin: str, fallback_title: str, *, url: str | None = None,
             charset: str | None = None) -> Source:
    """Turn the bytes of one document into a :class:`Source` (the single format dispatch).

    Args:
        data: the raw bytes.
        kind: ``"text"``, ``"html"`` or ``"pdf"``.
        origin: the path or final URL (for messages and ``Source.origin``).
        fallback_title: title when the document has none (file stem, URL's last segment or host).
        url: the page's URL, for HTML metadata.
        charset: an encoding declared by the server, tried first.

    Raises:
        SourceError: empty, binary, undecodable, or nothing to extract.
    """
    if not data.strip():
        raise SourceError(f"{origin}: empty; nothing to read")
    if kind == "pdf":
        text, title, date = _pdf_text(data, origin, fallback_title)
    elif kind == "html":
        html = _decode(data, origin, charset or _html_charset(data))
        text, title, date = _html_text(html, origin, fallback_title, url)
    else:
        text = _normalise(_decode(data, origin, charset))
        if not text.strip():
            raise SourceError(f"{origin}: empty; nothing to read")
        title, date = text_title_and_date(text, fallback_title)
    return Source.from_text(text, title, origin, date)


def _normalise(text: str) -> str:
    """Drop a leading byte-order mark and make every newline ``"\\n"``."""
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


# Encodings that browsers and this loader read as windows-1252 (its superset).
_AS_CP1252 = {"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "us-ascii", "ascii", "windows-1252", "cp1252"}


def _decode(data: bytes, origin: str, declared: str | None = None) -> str:
    """Decode text bytes: BOM, declared charset, UTF-8, then windows-1252 or ``charset-normalizer``.

    Raises:
        SourceError: the bytes are binary, or no encoding fits.
    """
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
                       (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            try:
                return _check_printable(data.decode(codec), origin)
            except UnicodeDecodeError:
                break
    if b"\x00" in data:
        raise SourceError(f"{origin}: binary file (NUL bytes), not text; give a text, HTML or PDF file")
    if declared:
        codec = "cp1252" if declared.strip().lower() in _AS_CP1252 else declared.strip()
        try:
            return _check_printable(data.decode(codec), origin)
        except (LookupError, UnicodeDecodeError):
            log.debug("%s: declared charset %r does not fit; detecting", origin, declared)
    try:
        return _check_printable(data.decode("utf-8"), origin)
    except UnicodeDecodeError:
        pass
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    if western is not None and _looks_western(western):
        log.debug("%s: not UTF-8; read as windows-1252", origin)
        return _check_printable(western, origin)
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise SourceError(f"{origin}: binary file, or text in an unknown encoding; save it as UTF-8")
    log.debug("%s: not UTF-8; detected %s", origin, best.encoding)
    return _check_printable(str(best), origin)


_WESTERN_PUNCT = set("“”‘’«»‹›—–…€£¥¢°§¶©®™•·×÷±¬¦µ¿¡ª º\u00a0\u00ad")


def _looks_western(text: str) -> bool:
    """Whether a windows-1252 reading of non-UTF-8 bytes is plausible (accents inside Latin words).

    Other 8-bit encodings read as windows-1252 give words made only of accented letters (Cyrillic,
    Greek) or symbols such as ``¹ ³ ¿`` inside words (Central European); those go to charset-normalizer.
    """
    text = text[:200_000]
    non_ascii = [c for c in text if ord(c) > 127]
    if not non_ascii:
        return True
    odd = sum(1 for c in non_ascii if not unicodedata.category(c).startswith("L") and c not in _WESTERN_PUNCT)
    odd += len(re.findall(r"(?<=[^\W\d_])[¿¡](?=[^\W\d_])", text))
    if odd > 0.02 * len(non_ascii):
        return False
    words = [w for w in re.findall(r"[^\W\d_]+", text) if any(ord(c) > 127 for c in w)]
    mixed = sum(1 for w in words if any(c.isascii() for c in w))
    return not words or mixed >= 0.5 * len(words)


def _check_printable(text: str, origin: str) -> str:
    """Refuse text that is mostly control characters (a binary file with a text extension)."""
    sample = text[:100_000]
    bad = sum(1 for c in sample if (unicodedata.category(c) in {"Cc", "Cs", "Co", "Cn"} and c not in "\t\n\r\f\v")
              or c == "\ufffd")
    if sample and bad > 0.05 * len(sample):
        raise SourceError(f"{origin}: binary file (mostly non-printable characters), not text; "
                          "give a text, HTML or PDF file")
    return text


def _html_charset(data: bytes) -> str | None:
    """The charset an HTML document declares in a ``<meta>`` tag near its start."""
    head = data[:4096].decode("ascii", "replace")
    found = re.search(r"<meta[^>]+charset\s*=\s*[\"']?\s*([\w.:-]+)", head, re.I)
    return found.group(1) if found else None


_PRUNE = ["//nav", "//script", "//style", "//noscript", "//template", "//iframe", "//svg", "//form",
          "//button", "//*[@role='navigation']", "//*[@hidden]", "//*[@aria-hidden='true']"]


def _html_text(html: str, origin: str, fallback_title: str, url: str | None) -> tuple[str, str, str]:
    """Main text, title and date of an HTML page (trafilatura, with its baseline as a fallback)."""
    import trafilatura

    if not html.strip():
        raise SourceError(f"{origin}: empty; nothing to read")
    try:
        doc = trafilatura.bare_extraction(html, url=url, with_metadata=True, include_comments=False,
                                          include_tables=True, include_images=False, include_links=False,
                                          include_formatting=False, deduplicate=False, prune_xpath=_PRUNE)
    except Exception as exc:  # noqa: BLE001 - trafilatura/lxml raise many kinds on broken markup
        log.debug("%s: trafilatura failed (%s); trying its baseline", origin, exc)
        doc = None
    text = _normalise(getattr(doc, "text", None) or "").strip()
    title = (getattr(doc, "title", None) or "").strip()
    date = (getattr(doc, "date", None) or "").strip()
    if not text:
        try:
            text = _normalise(trafilatura.baseline(html)[1] or "").strip()
        except Exception:  # noqa: BLE001
            text = ""
    if not text:
        raise SourceError(f"{origin}: no main text found in the HTML page (only markup, scripts or navigation?); "
                          "save the article's text as a .txt file instead")
    if not title:
        found = re.search(r"<title[^>]*>(.*?)</title>", html, re.I | re.S)
        title = " ".join(unescape(found.group(1)).split()) if found else ""
    if not title:
        title, date2 = text_title_and_date(text, fallback_title)
        date = date or date2
    return text, _shorten(title), date


_JUNK_PDF_TITLE = re.compile(r"^(untitled|microsoft (word|powerpoint) - .*|.*\.(docx?|pdf|indd|rtf|odt|pptx?|tex))$",
                             re.I)


def _pdf_text(data: bytes, origin: str, fallback_title: str) -> tuple[str, str, str]:
    """Text layer, title and date of a PDF.

    Raises:
        SourceError: not a readable PDF, encrypted with a password, or no text layer.
    """
    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise SourceError(f"{origin}: the PDF is password-protected; save an unprotected copy first")
        pages = [(page.extract_text() or "") for page in reader.pages]
    except SourceError:
        raise
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on damaged files
        raise SourceError(f"{origin}: not a readable PDF ({type(exc).__name__}: {exc}); "
                          "check the file or re-export it") from exc
    text = "\n\n".join(_normalise(p).translate(_LIGATURES).strip("\n") for p in pages if p.strip())
    if not text.strip():
        raise SourceError(f"{origin}: no text layer (scanned?) — run OCR first (for example: ocrmypdf in.pdf out.pdf)")
    title, date = text_title_and_date(text, fallback_title)
    try:
        meta = reader.metadata
        meta_title = " ".join((meta.title or "").split()) if meta else ""
        if meta_title and not _JUNK_PDF_TITLE.match(meta_title):
            title = meta_title
        if not date and meta and meta.creation_date:
            date = meta.creation_date.strftime("%Y-%m-%d")
    except Exception:  # noqa: BLE001 - broken metadata is not worth failing for
        log.debug("%s: unreadable PDF metadata", origin)
    return text, _shorten(title), date


# --------------------------------------------------------------------------------------------------
# URLs


def _address_refusal(address: str) -> str | None:
    """Why ``address`` may not be fetched without ``allow_private`` (``None`` when it is public)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None:
            return _address_refusal(str(embedded))
    for attr, kind in (("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_multicast", "multicast"),
                       ("is_unspecified", "unspecified"), ("is_reserved", "reserved"), ("is_private", "private")):
        if getattr(ip, attr):
            return kind
    return None if ip.is_global else "non-public"


def _resolve(host: str, port: int, origin: str, allow_private: bool) -> list[str]:
    """The addresses of ``host``; all must be public unless ``allow_private``."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise SourceError(f"{origin}: cannot resolve host {host!r} ({exc}); check the URL and the network") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not allow_private:
        for address in addresses:
            kind = _address_refusal(address)
            if kind:
                raise SourceError(
                    f"{origin}: {host} is a {kind} address ({address}); refused to guard against server-side "
                    "request forgery. If you trust it, allow it with allow_private=True (CLI: --allow-private; "
                    "web app: QA_ALLOW_PRIVATE_URLS=1)")
    if not addresses:
        raise SourceError(f"{origin}: cannot resolve host {host!r}")
    return addresses


class _PinnedHTTP(http.client.HTTPConnection):
    """An HTTP connection to an address checked beforehand (no second DNS lookup)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection to a checked address, verifying the certificate for the URL's host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _check_scheme(url: str, origin: str, redirected: bool = False) -> None:
    scheme = urlsplit(url).scheme.lower()
    if scheme in {"http", "https"}:
        return
    what = f"redirected to {url}: " if redirected else ""
    raise SourceError(f"{origin}: {what}{scheme or 'schemeless'}: URLs are refused; only http:// and https:// "
                      "web pages are fetched (give local files as paths)")


def _request_target(parts) -> str:
    path = quote(parts.path or "/", safe="/%:@!$&'()*+,;=-._~")
    query = quote(parts.query, safe="/%:@!$&'()*+,;=-._~?")
    return path + (f"?{query}" if query else "")


def _fetch(url: str, *, allow_private: bool, max_bytes: int, timeout: float) -> tuple[str, bytes, Message | None]:
    """GET ``url``, following at most 5 redirects, each target checked.

    Returns:
        The final URL (without fragment), the body, and the response headers.
    """
    deadline = time.monotonic() + timeout
    current = urlunsplit(urlsplit(url)._replace(fragment=""))
    visited: list[str] = []

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left

    for hop in range(MAX_REDIRECTS + 1):
        _check_scheme(current, url, redirected=hop > 0)
        parts = urlsplit(current)
        try:
            host = (parts.hostname or "").encode("idna").decode("ascii")
            port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        except (UnicodeError, ValueError) as exc:
            raise SourceError(f"{url}: invalid URL {current!r} ({exc})") from exc
        if not host:
            raise SourceError(f"{url}: invalid URL {current!r} (no host)")
        addresses = _resolve(host, port, url, allow_private)
        conn_cls = _PinnedHTTPS if parts.scheme.lower() == "https" else _PinnedHTTP
        conn = None
        try:
            for i, address in enumerate(addresses):  # the first checked address that answers
                conn = conn_cls(host, port, address, remaining())
                try:
                    conn.connect()
                    break
                except ssl.SSLError:
                    raise
                except OSError:
                    conn.close()
                    if i == len(addresses) - 1:
                        raise
            conn.putrequest("GET", _request_target(parts), skip_accept_encoding=True)
            for name, value in (("User-Agent", _USER_AGENT), ("Accept-Encoding", "gzip, deflate, identity"),
                                ("Accept", "text/html,application/xhtml+xml,text/plain;q=0.9,application/pdf;q=0.9,"
                                           "*/*;q=0.1")):
                conn.putheader(name, value)
            conn.endheaders()
            sock = conn.sock  # http.client drops it from conn when the response closes the connection
            sock.settimeout(remaining())
            resp = conn.getresponse()
            if resp.status in _REDIRECTS:
                location = resp.getheader("Location")
                if not location:
                    raise SourceError(f"{url}: HTTP {resp.status} redirect without a Location")
                target = urlunsplit(urlsplit(urljoin(current, location.strip()))._replace(fragment=""))
                visited.append(current)
                if target in visited:
                    raise SourceError(f"{url}: redirect loop ({current} -> {target}); the site is misconfigured")
                if hop == MAX_REDIRECTS:
                    raise SourceError(f"{url}: more than {MAX_REDIRECTS} redirects; give the final URL")
                _check_scheme(target, url, redirected=True)
                log.debug("%s: redirected to %s", current, target)
                current = target
                continue
            if not 200 <= resp.status < 300:
                raise SourceError(f"{url}: HTTP {resp.status} {resp.reason}; check the URL")
            length = resp.getheader("Content-Length")
            if length and length.strip().isdigit() and int(length) > max_bytes:
                raise _too_big(url, int(length), max_bytes)
            body = _read_body(resp, sock, url, max_bytes, remaining)
            return current, body, resp.headers
        except SourceError:
            raise
        except (TimeoutError, socket.timeout) as exc:
            raise SourceError(f"{url}: no complete answer within {timeout:g} s; try again later, or pass a "
                              "longer timeout") from exc
        except ssl.SSLError as exc:
            raise SourceError(f"{url}: TLS error ({exc}); the site's certificate or setup is wrong") from exc
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise SourceError(f"{url}: cannot fetch ({type(exc).__name__}: {exc}); check the URL and the network") \
                from exc
        finally:
            if conn is not None:
                conn.close()
    raise SourceError(f"{url}: more than {MAX_REDIRECTS} redirects; give the final URL")  # pragma: no cover


def _read_body(resp: http.client.HTTPResponse, sock: socket.socket, origin: str, max_bytes: int,
               remaining: Callable[[], float]) -> bytes:
    """Stream the body, decompressing gzip/deflate, and stop past ``max_bytes`` or the deadline."""
    encoding = (resp.getheader("Content-Encoding") or "identity").strip().lower()
    if encoding in {"gzip", "x-gzip", "deflate"}:
        inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)
    elif encoding in {"identity", ""}:
        inflater = None
    else:
        raise SourceError(f"{origin}: unsupported Content-Encoding {encoding!r}")
    chunks: list[bytes] = []
    size = 0
    while True:
        sock.settimeout(remaining())
        chunk = resp.read1(65536)
        if not chunk:
            break
        if inflater is not None:
            try:
                chunk = inflater.decompress(chunk, max_bytes + 1 - size)
            except zlib.error as exc:
                raise SourceError(f"{origin}: damaged {encoding} body ({exc})") from exc
        size += len(chunk)
        if size > max_bytes:
            raise _too_big(origin, None, max_bytes)
        chunks.append(chunk)
        if inflater is not None and inflater.unconsumed_tail:
            raise _too_big(origin, None, max_bytes)
    return b"".join(chunks)


def _url_fallback_title(url: str) -> str:
    parts = urlsplit(url)
    name = unquote(PurePosixPath(parts.path).name)
    return PurePosixPath(name).stem or name or parts.hostname or url


def _load_url(url: str, *, allow_private: bool, max_bytes: int, timeout: float) -> Source:
    _check_scheme(url, url)
    final, body, headers = _fetch(url, allow_private=allow_private, max_bytes=max_bytes, timeout=timeout)
    ctype = headers.get_content_type() if headers is not None and headers.get("Content-Type") else None
    charset = headers.get_content_charset() if headers is not None and ctype else None
    ext_kind = EXTENSIONS.get(PurePosixPath(urlsplit(final).path).suffix.lower())
    if ctype in _HTML_TYPES:
        kind = "html"
    elif ctype in _PDF_TYPES:
        kind = "pdf"
    elif ctype is None or ctype in _UNTYPED:
        head = body[:1024].lstrip().lower()
        kind = ("pdf" if body.startswith(b"%PDF-") else
                ext_kind or ("html" if head.startswith((b"<!doctype html", b"<html")) else "text"))
    elif ctype.startswith("text/"):
        kind = "text"
    else:
        raise SourceError(f"{url}: unsupported content type {ctype}; expected an HTML page, plain text or a PDF")
    log.debug("%s: %s read as %s (%d bytes)", final, ctype, kind, len(body))
    return _extract(body, kind, final, _url_fallback_title(final), url=final, charset=charset)
