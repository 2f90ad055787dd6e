"""`qa --version` and `qa.__version__` follow the changelog; the version is written in one place."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import qa
from conftest import REPO


def released_versions() -> list[str]:
    """The versions of CHANGELOG.md's release headings (``## 0.2.0 - 2026-12-02``), newest first."""
    text = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    return re.findall(r"^## (\d+\.\d+\.\d+) - \d{4}-\d{2}-\d{2}$", text, flags=re.M)


def test_the_version_is_the_changelogs_newest_release():
    versions = released_versions()
    assert versions, "CHANGELOG.md has no '## X.Y.Z - YYYY-MM-DD' headings"
    assert qa.__version__ == versions[0]
    assert len(set(versions)) == len(versions)


def test_qa_version_prints_it():
    out = subprocess.run([sys.executable, "-m", "qa.cli", "--version"], cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"qa {qa.__version__}"


def test_the_package_metadata_takes_the_version_from_qa_version():
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    static = project["project"].get("version")
    if static is not None:  # a static version must at least agree
        assert static == qa.__version__, ("pyproject.toml's version disagrees with qa/_version.py: declare "
                                          "dynamic = [\"version\"] and [tool.setuptools.dynamic] "
                                          "version = {attr = \"qa._version.__version__\"}")
    else:
        assert "version" in project["project"].get("dynamic", [])
        assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "qa._version.__version__"}
