"""The errors a user can cause and fix (bad input, missing models, bad index): shown as one line, no traceback."""

from __future__ import annotations


def _collect() -> tuple[type[BaseException], ...]:
    from qa.assistant import QuestionError
    from qa.config import ConfigError
    from qa.index import IndexFileError
    from qa.reader import ReaderError

    errors: list[type[BaseException]] = [QuestionError, ConfigError, IndexFileError, ReaderError, KeyError,
                                         FileNotFoundError, PermissionError]
    try:
        from qa.sources import SourceError

        errors.append(SourceError)
    except ImportError:  # pragma: no cover - sources module always ships
        pass
    return tuple(errors)


USER_ERRORS = _collect()
