"""The package version: the one place it is written (``CHANGELOG.md`` has a section for each version)."""

__version__ = "0.5.2"
