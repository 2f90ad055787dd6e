#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite. Fails when no test ran.
set -uo pipefail
cd "$(dirname "$0")/.."
# The Ray engine is optional for users but tested here: its tests run on a local 2-CPU Ray.
QA_EXTRAS=test,ray bash scripts/setup.sh || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "no tests were collected: failing" >&2; exit 1; fi
exit "$rc"
