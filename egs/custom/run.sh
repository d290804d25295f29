#!/usr/bin/env bash
# Usage: ./run.sh --local-data-opts "--audio-dir /path/to/speech" --init-from default [options]
#        (fine-tunes the shipped model on your speech: minutes on a CPU), or without
#        --init-from to train conf/custom.yaml from scratch (hours to days: a GPU).
#
# Any folder of audio files (WAV, FLAC, OGG, MP3, searched recursively). When the files sit in
# one sub-folder per speaker, whole speakers are held out for dev and test; otherwise files are
# split by a hash of their path (5% dev, 5% test).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh

"$CODEC_ROOT/recipes/codec.sh" --config conf/custom.yaml --bitrates "1.5 3 6" "$@"
