#!/usr/bin/env bash
# Sets up a working copy: a virtual environment in .venv with torch 2.13.0 (CPU wheel) and the
# project with its dev extras, plus the Debian packages the browser and PostgreSQL tests use.
# Idempotent; `--fresh` (or CI=true) rebuilds the venv from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ "${1:-}" == "--fresh" || "${CI:-}" == "true" ]]; then rm -rf .venv; fi
[[ -x .venv/bin/python ]] || "$PY" -m venv .venv
export PIP_DISABLE_PIP_VERSION_CHECK=1
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q torch==2.13.0 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q -e ".[dev]" 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import torch, librosa, moviepy, boto3, flask, statsmodels" \
  || { echo "setup: the Python install failed" >&2; exit 1; }

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || need+=(postgresql)
if ((${#need[@]})); then
  if [[ $(id -u) == 0 ]]; then
    echo "setup: installing Debian packages: ${need[*]}"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null
  else
    echo "setup: please install the Debian packages ${need[*]} (browser and PostgreSQL tests need them)" >&2
  fi
fi
echo "setup: done (.venv ready; run .venv/bin/regnet-bench --help)"
