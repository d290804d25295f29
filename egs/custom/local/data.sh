#!/usr/bin/env bash
# Usage: local/data.sh --audio-dir DIR
# Writes data/{train,dev,test} from a folder of audio files.
set -euo pipefail
audio_dir=""
help_message="Usage: local/data.sh --audio-dir DIR"
. "$CODEC_ROOT/recipes/utils/parse_options.sh"
if [ -z "$audio_dir" ] || [ ! -d "$audio_dir" ]; then
  echo "error: give the folder of audio files: ./run.sh --local-data-opts \"--audio-dir DIR\"" >&2
  exit 1
fi
python "$CODEC_ROOT/recipes/utils/prepare.py" folder "$audio_dir" data
