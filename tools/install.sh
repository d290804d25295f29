#!/usr/bin/env bash
# Usage: tools/install.sh
# Creates .venv (idempotent), installs torch==${TORCH_VERSION:-2.13.0} first, then codec in
# editable mode with the dev, recipes and metrics extras, and the archive of older zoo models
# (tools/models-archive), and exports the package's models for the torch-free runtime (into
# the cache of codec.zoo.cache_dir). A second run only checks and returns quickly.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv="${VENV:-$root/.venv}"
torch_version="${TORCH_VERSION:-2.13.0}"
python="${PYTHON:-python3}"
stamp="$venv/.codec-installed"

# The stamp records what was installed; it is stale once either pyproject.toml changes.
archive="$root/tools/models-archive"
want="torch=$torch_version $(cat "$root/pyproject.toml" "$archive/pyproject.toml" | sha256sum | cut -c1-16)"
prepare_runtime() {  # the zoo's models exported for the torch-free runtime (cached by hash)
  "$venv/bin/python" -c "from codec.zoo import prepare_runtime; prepare_runtime()"
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  prepare_runtime  # a model shipped since the last install is exported here
  exit 0
fi

[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip
# torch first, pinned: a later unpinned requirement would otherwise pull a multi-GB CUDA build.
"$venv/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$torch_version')" 2>/dev/null \
  || "${pip[@]}" "torch==$torch_version"
"${pip[@]}" -e "$root[dev,recipes,metrics]" -e "$archive"
# librosa compiles its numba kernels on first use and caches them beside its sources. Processes
# that compile at the same time (test workers, recipe jobs) can leave a cache that crashes every
# later pYIN call, so start from an empty cache and compile the kernels we use here, serially.
site=$("$venv/bin/python" -c "import librosa, pathlib; print(pathlib.Path(librosa.__file__).parent)")
find "$site" -path '*/__pycache__/*' \( -name '*.nbi' -o -name '*.nbc' \) -delete
"$venv/bin/python" - <<'PY'
import librosa
import numpy as np

y = np.random.default_rng(0).standard_normal(16000).astype(np.float32)
librosa.pyin(y, fmin=60, fmax=400, sr=16000, frame_length=1024, hop_length=320)
librosa.zero_crossings(y)
librosa.istft(librosa.stft(y))
PY
prepare_runtime
echo "$want" > "$stamp"
echo "installed codec into $venv (torch $torch_version)"
