"""Who may change the index through the web app, and how big uploads and the index may grow.

Asking is open to everyone who can reach the page (or to everyone who logs in, when the operator sets
``QA_AUTH_FILE``). Changing the index (adding sources, removing one, reloading it from disk) is for editors:

* With no editor credentials configured, editing is open only while the app listens on a loopback address
  (``127.0.0.1``, ``::1``, ``localhost``), and even then each write must come straight from this machine:
  a request from another address, or one that carries proxy headers (``X-Forwarded-For``, ``Forwarded``,
  ``X-Real-IP``), is refused. On any other address the Index tab and its endpoints are not built at all.
* With editor credentials, every write needs them, on any address: the token of ``QA_EDIT_TOKEN_FILE`` (a
  file holding it) or ``QA_EDIT_TOKEN``, typed into the Index tab or passed to the API; or a login (Gradio's
  ``auth=``) whose user name is in ``QA_EDITORS``. Logins come from ``QA_AUTH_FILE``, a file of
  ``user:password`` lines; with it everyone, readers too, logs in first.
* ``QA_READ_ONLY=1`` turns editing off whatever else is set.

Secrets are read from files or the environment, never from the command line, where ``ps`` shows them.

The limits (:class:`Limits`) bound what one write may bring in and what the index may hold; each refusal
names the limit and the variable that raises it. These variables are read here, not by
:class:`qa.config.Settings`.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from qa.config import ConfigError

log = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host")
MiB = 1024 * 1024


class EditRefused(Exception):
    """A write to the index that this request may not make (the message says why and what to do)."""


class LimitError(ValueError):
    """A write that would take an upload or the index over a limit (the message names the limit)."""


def is_loopback_host(host: str | None) -> bool:
    """Whether the server address ``host`` is reachable from this machine only.

    ``None`` and ``""`` count as Gradio's default, ``127.0.0.1``. A host name other than ``localhost`` is
    not looked up: it counts as reachable from elsewhere.
    """
    if host is None or host == "":
        return True
    name = host.strip().strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_loopback_client(address: str | None) -> bool:
    if not address:
        return False
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return address == "localhost"


def _truthy(raw: str | None, name: str) -> bool:
    if raw is None or raw.strip() == "":
        return False
    if raw.strip().lower() in {"1", "true", "yes", "on"}:
        return True
    if raw.strip().lower() in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name}={raw!r} is not a valid bool (use 1 or 0)")


def _read_secret_file(path: str, name: str) -> str:
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name}={path}: cannot read it ({exc.strerror or exc})") from None
    try:
        mode = file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s (%s) can be read by other users of this machine; chmod 600 it", name, file)
    except OSError:  # pragma: no cover - it was just read
        pass
    return text


def read_logins(path: str) -> dict[str, str]:
    """The ``user:password`` lines of a login file (``#`` comments and blank lines skipped).

    Raises:
        ConfigError: unreadable, empty, a line without ``:``, an empty name or password, or a name twice.
    """
    logins: dict[str, str] = {}
    for number, line in enumerate(_read_secret_file(path, "QA_AUTH_FILE").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        user = user.strip()
        if not sep or not user or not password:
            raise ConfigError(f"QA_AUTH_FILE={path}, line {number}: write each login as user:password")
        if user in logins:
            raise ConfigError(f"QA_AUTH_FILE={path}, line {number}: {user!r} is listed twice")
        logins[user] = password
    if not logins:
        raise ConfigError(f"QA_AUTH_FILE={path} holds no login; write one user:password per line")
    return logins


@dataclass(frozen=True)
class Access:
    """The editing policy of one running app.

    Attributes:
        mode: ``"open"`` (no credentials: writes straight from this machine only), ``"editors"`` (a token or
            an editor login is needed) or ``"off"`` (no writes; the Index tab is not built).
        reason: why, in words (logged at start and given in refusals).
        token: the editor token, when one is configured.
        editors: user names (of ``logins``) that may edit.
        logins: user name -> password for Gradio's login page; None: no login.
    """

    mode: str = "open"
    reason: str = "editing is open to requests from this machine"
    token: str | None = field(default=None, repr=False)
    editors: frozenset[str] = frozenset()
    logins: Mapping[str, str] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in {"open", "editors", "off"}:
            raise ConfigError(f"editing mode must be open, editors or off, not {self.mode!r}")

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_env(cls, host: str | None, environ: Mapping[str, str] | None = None, *, public: bool = False) -> "Access":
        """The policy for a server listening on ``host``, from ``QA_READ_ONLY``, ``QA_EDIT_TOKEN_FILE``,
        ``QA_EDIT_TOKEN``, ``QA_AUTH_FILE`` and ``QA_EDITORS``.

        Args:
            host: the address the server listens on.
            environ: the variables (default: ``os.environ``).
            public: the app is reachable from elsewhere whatever ``host`` is (a share link).

        Raises:
            ConfigError: a file cannot be read, a token is too short, or an editor has no login.
        """
        env = os.environ if environ is None else environ
        read_only = _truthy(env.get("QA_READ_ONLY"), "QA_READ_ONLY")
        token = None
        if env.get("QA_EDIT_TOKEN_FILE"):
            if env.get("QA_EDIT_TOKEN"):
                raise ConfigError("set QA_EDIT_TOKEN_FILE or QA_EDIT_TOKEN, not both")
            token = _read_secret_file(env["QA_EDIT_TOKEN_FILE"], "QA_EDIT_TOKEN_FILE").strip()
            where = f"QA_EDIT_TOKEN_FILE={env['QA_EDIT_TOKEN_FILE']}"
        elif env.get("QA_EDIT_TOKEN"):
            token = env["QA_EDIT_TOKEN"].strip()
            where = "QA_EDIT_TOKEN"
        if token is not None and (len(token) < MIN_TOKEN_CHARS or any(ch.isspace() for ch in token)):
            raise ConfigError(f"the editor token ({where}) must be at least {MIN_TOKEN_CHARS} characters without "
                              "spaces; make one with `python -c \"import secrets; print(secrets.token_urlsafe())\"`")
        logins = read_logins(env["QA_AUTH_FILE"]) if env.get("QA_AUTH_FILE") else None
        editors = frozenset(name.strip() for name in env.get("QA_EDITORS", "").split(",") if name.strip())
        if editors and logins is None:
            raise ConfigError("QA_EDITORS names editors, but there are no logins: set QA_AUTH_FILE to a file of "
                              "user:password lines (or use an editor token, QA_EDIT_TOKEN_FILE)")
        unknown = sorted(editors - set(logins or {}))
        if unknown:
            raise ConfigError(f"QA_EDITORS names {', '.join(unknown)}, who {'has' if len(unknown) == 1 else 'have'} "
                              f"no login in QA_AUTH_FILE={env['QA_AUTH_FILE']}")
        if read_only:
            return cls("off", "editing is off (QA_READ_ONLY=1)", None, frozenset(), logins)
        if token or editors:
            how = " or ".join(part for part in (
                "the editor token" if token else "",
                f"an editor login ({', '.join(sorted(editors))})" if editors else "") if part)
            return cls("editors", f"editing needs {how}", token, editors, logins)
        if is_loopback_host(host) and not public:
            return cls("open", "editing is open to requests from this machine (the app listens on "
                       f"{host or '127.0.0.1'}), and to no one else", None, frozenset(), logins)
        where = "through a share link" if public else f"on {host}, which other machines can reach"
        return cls("off", f"editing is off: the app listens {where}, and no "
                   "editor is configured (set QA_EDIT_TOKEN_FILE, or QA_AUTH_FILE with QA_EDITORS; see docs/deploy.md)",
                   None, frozenset(), logins)

    # -- questions ------------------------------------------------------------------------------

    @property
    def editing(self) -> bool:
        """Whether the app offers editing at all (builds the Index tab and its endpoints)."""
        return self.mode != "off"

    @property
    def needs_token_box(self) -> bool:
        return self.mode == "editors" and self.token is not None

    def launch_auth(self) -> list[tuple[str, str]] | None:
        """The ``auth=`` of :meth:`gradio.Blocks.launch`: every login, or None."""
        return list(self.logins.items()) if self.logins else None

    def offers_editing_to(self, request: Any) -> bool:
        """Whether the Index tab is shown to the session of ``request`` (it may still need the token)."""
        if self.mode == "off":
            return False
        if self.mode == "open":
            return request is None or _direct_local(request)
        return self.token is not None or _username(request) in self.editors

    def check(self, token: str | None, request: Any) -> str:
        """Allow a write, or refuse it.

        Args:
            token: the editor token the request carries ("" or None: none).
            request: the :class:`gradio.Request` (None for an in-process call).
        Returns:
            Who is writing, for the log ("local", "token", or the user name).
        Raises:
            EditRefused: with why and what to do.
        """
        if self.mode == "off":
            raise EditRefused(f"This chat is read-only: {self.reason}. The index was not changed.")
        if self.mode == "open":
            if request is None or _direct_local(request):
                return "local"
            raise EditRefused("Editing is open only to requests straight from the machine the app runs on, and "
                              f"this one came from {_client(request) or 'an unknown address'}"
                              f"{' through a proxy' if _proxied(request) else ''}. The index was not changed; "
                              "the operator can configure editors (see docs/deploy.md).")
        user = _username(request)
        if user is not None and user in self.editors:
            return user
        if self.token is not None and token and hmac.compare_digest(token.strip().encode(), self.token.encode()):
            return "token"
        if self.token is not None:
            what = "the editor token is wrong" if token else "editing needs the editor token"
            raise EditRefused(f"Not allowed: {what}. The index was not changed.")
        who = f"you are logged in as {user}, who is not an editor" if user else "you are not logged in as an editor"
        raise EditRefused(f"Not allowed: {who}. The index was not changed.")


def _headers(request: Any) -> dict[str, str]:
    try:
        return {str(k).lower(): str(v) for k, v in dict(request.headers).items()}
    except Exception:  # noqa: BLE001 - a request without headers has none
        return {}


def _client(request: Any) -> str | None:
    try:
        return request.client.host
    except Exception:  # noqa: BLE001
        return None


def _proxied(request: Any) -> bool:
    headers = _headers(request)
    return any(h in headers for h in PROXY_HEADERS)


def _direct_local(request: Any) -> bool:
    return _is_loopback_client(_client(request)) and not _proxied(request)


def _username(request: Any) -> str | None:
    return getattr(request, "username", None) if request is not None else None


# --------------------------------------------------------------------------------------------------
# Limits


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a valid int") from None
    if value < 1:
        raise ConfigError(f"{name} must be at least 1, not {value}")
    return value


def format_size(n: int) -> str:
    """``n`` bytes in MiB (or bytes, under one MiB)."""
    return f"{n / MiB:,.1f} MiB" if n >= MiB else f"{n:,} bytes"


@dataclass(frozen=True)
class Limits:
    """What one write may bring in and what the index may hold (the web app's writes only; the ``qa`` command
    is not limited).

    Attributes:
        max_upload_bytes: largest uploaded file (Gradio's ``max_file_size``; ``QA_MAX_UPLOAD_BYTES``).
        max_sources_per_request: files and URLs in one add (``QA_MAX_SOURCES_PER_REQUEST``).
        max_index_sources: sources the index may hold (``QA_MAX_INDEX_SOURCES``).
        max_index_passages: passages the index may hold (``QA_MAX_INDEX_PASSAGES``; up to 100,000 the search
            stays exact, see :data:`qa.index.EXACT_LIMIT`).
        max_index_bytes: the index's size on disk (``QA_MAX_INDEX_BYTES``; see :func:`index_bytes`).
    """

    max_upload_bytes: int = 20 * MiB
    max_sources_per_request: int = 20
    max_index_sources: int = 1000
    max_index_passages: int = 100_000
    max_index_bytes: int = 512 * MiB

    ENV = {"max_upload_bytes": "QA_MAX_UPLOAD_BYTES", "max_sources_per_request": "QA_MAX_SOURCES_PER_REQUEST",
           "max_index_sources": "QA_MAX_INDEX_SOURCES", "max_index_passages": "QA_MAX_INDEX_PASSAGES",
           "max_index_bytes": "QA_MAX_INDEX_BYTES"}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Limits":
        """Defaults overridden by the ``QA_MAX_*`` variables above.

        Raises:
            ConfigError: a value that is not a whole number of at least 1.
        """
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(**{name: _env_int(env, var, getattr(defaults, name)) for name, var in cls.ENV.items()})

    def check_request(self, refs: list[str], files: list[str], labels: Mapping[str, str] | None = None) -> None:
        """Refuse an add of too many sources, or of an uploaded file over ``max_upload_bytes``.

        Raises:
            LimitError: naming the limit and its variable.
        """
        labels = labels or {}
        if len(refs) > self.max_sources_per_request:
            raise LimitError(f"{len(refs)} sources in one request; the limit is {self.max_sources_per_request} "
                             f"(QA_MAX_SOURCES_PER_REQUEST): add them in smaller batches")
        for path in files:
            try:
                size = os.path.getsize(path)
            except OSError:
                continue  # the reader reports a missing file as skipped
            if size > self.max_upload_bytes:
                raise LimitError(f"{labels.get(path, Path(path).name)} is {format_size(size)}; the limit is "
                                 f"{format_size(self.max_upload_bytes)} per file (QA_MAX_UPLOAD_BYTES)")

    def check_index(self, index: Any, *, new: bool = False) -> None:
        """Refuse an index over any of the ``max_index_*`` limits.

        Args:
            index: the index as it is (checked before reading anything: at a limit there is no room left), or,
                with ``new``, the one a write would make (over a limit is refused before it is saved).
        Raises:
            LimitError: naming the limit and its variable.
        """
        if not new:
            over = lambda n, limit: n >= limit  # noqa: E731
            holds, takes = "already holds", "already takes"
            tail = "; nothing was added: remove sources first, or ask the operator to raise the limit"
        else:
            over = lambda n, limit: n > limit  # noqa: E731
            holds, takes = "would hold", "would take"
            tail = ("; nothing was added: add fewer or smaller sources, remove some first, or ask the operator to "
                    "raise the limit")
        n = len(index.sources)
        if over(n, self.max_index_sources):
            raise LimitError(f"the index {holds} {n:,} source{'s' if n != 1 else ''}; the limit is "
                             f"{self.max_index_sources:,} (QA_MAX_INDEX_SOURCES){tail}")
        if over(len(index), self.max_index_passages):
            raise LimitError(f"the index {holds} {len(index):,} passages; the limit is "
                             f"{self.max_index_passages:,} (QA_MAX_INDEX_PASSAGES){tail}")
        size = index_bytes(index)
        if over(size, self.max_index_bytes):
            raise LimitError(f"the index {takes} {format_size(size)} on disk; the limit is "
                             f"{format_size(self.max_index_bytes)} (QA_MAX_INDEX_BYTES){tail}")


def index_bytes(index: Any) -> int:
    """The size :func:`qa.index.save` writes for ``index``, computed without writing it (within about 1%).

    Source texts and ``passages.json`` exactly, the FAISS file from its kind (flat: 4 bytes per dimension per
    vector; other kinds serialized), the manifest from the sources' metadata.
    """
    texts = sum(len(s.text.encode("utf-8")) for s in index.sources.values())
    rows = json.dumps([{"source_id": p.source_id, "start": p.start, "end": p.end} for p in index.passages])
    vectors = index.vectors
    n, dim = getattr(vectors, "ntotal", len(index.passages)), index.dimension
    if type(vectors).__name__ in {"IndexFlatIP", "IndexFlatL2", "IndexFlat"}:
        vector_bytes = n * dim * 4 + 45
    else:
        import faiss

        vector_bytes = int(faiss.serialize_index(vectors).size)
    metas = json.dumps([s.meta() for s in index.sources.values()], indent=2, ensure_ascii=False)
    manifest = len(metas.encode("utf-8")) + 150 * len(index.sources) + 460
    return texts + len(rows.encode("utf-8")) + vector_bytes + manifest
