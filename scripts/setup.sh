#!/usr/bin/env bash
# Set up evosearch in ./.venv: torch (CPU build unless TORCH_SPEC says otherwise), the package
# in editable mode with its test extras. Safe to re-run; a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
# The strong sandbox mode runs candidates inside bubblewrap (docs/security.md). Install it where we may;
# elsewhere `evosearch doctor` says what is missing and how to get it.
if ! command -v bwrap >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get install -y -qq bubblewrap libseccomp2 >/dev/null 2>&1 \
    || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq bubblewrap libseccomp2 >/dev/null 2>&1)) \
    || echo "setup: could not install bubblewrap; the sandbox will use a weaker mode (see evosearch doctor)" >&2
fi
# The package itself asks for an open torch range; pinning here keeps a CPU-only setup from
# pulling a multi-GB CUDA build. Set TORCH_SPEC="torch" (or a CUDA index) on a GPU machine.
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install "$TORCH_SPEC"
fi
"${PIP[@]}" install -e ".[test]"
.venv/bin/python -c "import torch, envpool, evosearch; print('evosearch', evosearch.__version__, '| torch', torch.__version__, '| envpool', envpool.__version__)"
.venv/bin/evosearch doctor --no-live 2>/dev/null | head -2 || true
