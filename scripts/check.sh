#!/usr/bin/env bash
# Every check CI runs, in order: lint, format, types, import contracts and cycles, then the whole test suite with
# its 25 slowest tests listed. README's test command runs this script; so does .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== ruff check" && ruff check .
echo "== ruff format --check" && ruff format --check .
echo "== mypy (strict on cnn_core; settings in pyproject.toml)" && mypy
echo "== import contracts (import-linter; pyproject.toml)" && lint-imports
echo "== import cycles" && python scripts/import_cycles.py
echo "== tests" && python -m pytest -q --durations=25 "$@"
