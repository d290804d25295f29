# Where the toolkit is (CODEC_ROOT, by default two levels up), with its virtualenv on PATH.
export CODEC_ROOT=${CODEC_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
if [ ! -x "$CODEC_ROOT/recipes/codec.sh" ]; then
  echo "error: CODEC_ROOT=$CODEC_ROOT is not the codec toolkit's root: set CODEC_ROOT" >&2
  return 1
fi
if [ -d "$CODEC_ROOT/.venv/bin" ]; then export PATH="$CODEC_ROOT/.venv/bin:$PATH"; fi
