#!/usr/bin/env bash
# Usage: tools/install.sh
# Creates .venv (idempotent), installs torch==${TORCH_VERSION:-2.13.0} first, then codec in
# editable mode with the dev, recipes and metrics extras. A second run only checks and returns quickly.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="${VENV:-$root/.venv}"
torch_version="${TORCH_VERSION:-2.13.0}"
python="${PYTHON:-python3}"
stamp="$venv/.codec-installed"

# The stamp records what was installed; it is stale once pyproject.toml changes.
want="torch=$torch_version $(sha256sum "$root/pyproject.toml" | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip
# torch first, pinned: a later unpinned requirement would otherwise pull a multi-GB CUDA build.
"$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null \
  || "${pip[@]}" "torch==$torch_version"
"${pip[@]}" -e "$root[dev,recipes,metrics]"
echo "$want" > "$stamp"
echo "installed codec into $venv (torch $torch_version)"
