#!/usr/bin/env bash
# Usage: libri_data.sh NAME URL SUFFIX "TRAIN_PARTS" DEV_PART TEST_PART DOWNLOAD_DIR [PART=MD5 ...]
# For corpora laid out like LibriSpeech (NAME/part/speaker/chapter/utt.SUFFIX): downloads each
# part (resumable; verified by the given MD5s, else by URL/md5sum.txt; skipped when done),
# unpacks it, and writes data/{train,dev,test} (train joins the train parts).
set -euo pipefail
name=$1; url=$2; suffix=$3; train_parts=$4; dev_part=$5; test_part=$6; download_dir=$7
shift 7
declare -A md5=()
for pair in "$@"; do md5[${pair%%=*}]=${pair#*=}; done

for part in $train_parts $dev_part $test_part; do
  if [ ! -f "$download_dir/$name/.$part.done" ]; then
    "$CODEC_ROOT/recipes/utils/download.sh" "$url/$part.tar.gz" "$download_dir" "${md5[$part]:-}"
    tar -xzf "$download_dir/$part.tar.gz" -C "$download_dir"
    touch "$download_dir/$name/.$part.done"
  fi
done
prepare="python $CODEC_ROOT/recipes/utils/prepare.py libri --suffix $suffix"
for part in $train_parts; do $prepare "$download_dir/$name/$part" "data/parts/$part"; done
mkdir -p data/train
for f in wav.scp utt2spk spk2utt; do
  for part in $train_parts; do cat "data/parts/$part/$f"; done | sort > "data/train/$f"
done
$prepare "$download_dir/$name/$dev_part" data/dev
$prepare "$download_dir/$name/$test_part" data/test
