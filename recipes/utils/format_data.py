#!/usr/bin/env python3
"""Usage: format_data.py part SRC DST JOB NJ [--sample-rate 16000]
          format_data.py merge SRC DST NJ [--sample-rate 16000]

Stage 2 of the recipe: `part` dumps every NJ-th utterance of SRC (from JOB) to mono FLAC under
DST/audio (run NJ of them in parallel with run.pl); `merge` joins the parts into DST/wav.scp,
copies utt2spk/spk2utt, validates every file and writes DST/utt2dur.
"""

import argparse
from pathlib import Path

from codec.data.format import format_part, merge_parts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["part", "merge"])
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("numbers", type=int, nargs="+", help="JOB NJ for part, NJ for merge")
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args()
    if args.action == "part":
        job, jobs = args.numbers
        print(
            f"{format_part(args.src, args.dst, args.sample_rate, job, jobs)} utterances formatted"
        )
    else:
        count = merge_parts(args.src, args.dst, args.numbers[0], args.sample_rate)
        print(f"{count} utterances in {args.dst}")


if __name__ == "__main__":
    main()
