#!/usr/bin/env python3
"""Usage: prepare.py CORPUS ... -- command-line wrapper of codec.data.prepare.

prepare.py folder AUDIO_DIR OUT_ROOT              any folder -> OUT_ROOT/{train,dev,test}
prepare.py libri ROOT OUT_DIR [--suffix .flac]    a LibriSpeech/LibriTTS part -> one data dir
prepare.py vctk ROOT OUT_ROOT                     VCTK 0.92 -> OUT_ROOT/{train,dev,test}
prepare.py debian WORK OUT_ROOT PKG=DIR... [--test PKG] [--max-files N] [--skip /fr/]
                  [--transcripts PKG=core-sounds-<lang>.txt.gz]
"""

import argparse
from pathlib import Path

from codec.data import prepare


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="corpus", required=True)
    folder = sub.add_parser("folder")
    folder.add_argument("audio_dir", type=Path)
    folder.add_argument("out_root", type=Path)
    libri = sub.add_parser("libri")
    libri.add_argument("root", type=Path)
    libri.add_argument("out_dir", type=Path)
    libri.add_argument("--suffix", default=".flac")
    vctk = sub.add_parser("vctk")
    vctk.add_argument("root", type=Path)
    vctk.add_argument("out_root", type=Path)
    debian = sub.add_parser("debian")
    debian.add_argument("work", type=Path)
    debian.add_argument("out_root", type=Path)
    debian.add_argument("packages", nargs="+", help="PACKAGE=EXTRACTED_DIR")
    debian.add_argument("--test", action="append", default=[], help="package held out as test")
    debian.add_argument("--max-files", type=int, default=0, help="per package (0: all)")
    debian.add_argument("--max-test-files", type=int, default=0, help="per test package (0: all)")
    debian.add_argument(
        "--skip", action="append", default=[], help="leave out files whose path holds this"
    )
    debian.add_argument(
        "--transcripts",
        action="append",
        default=[],
        help="PACKAGE=TXT_GZ: an Asterisk package's prompt transcripts (writes `text`)",
    )
    args = parser.parse_args()

    if args.corpus == "folder":
        counts = prepare.prepare_folder(args.audio_dir, args.out_root)
    elif args.corpus == "libri":
        counts = {
            str(args.out_dir): prepare.prepare_librispeech_style(
                args.root, args.out_dir, args.suffix
            )
        }
    elif args.corpus == "vctk":
        counts = prepare.prepare_vctk(args.root, args.out_root)
    else:
        extracted = dict(item.split("=", 1) for item in args.packages)
        extracted = {name: Path(path) for name, path in extracted.items()}
        counts = prepare.prepare_debian_speech(
            extracted,
            args.work,
            args.out_root,
            tuple(args.test),
            args.max_files,
            args.max_test_files,
            tuple(args.skip),
            {k: Path(v) for k, v in (item.split("=", 1) for item in args.transcripts)},
        )
    for name, count in counts.items():
        print(f"{name}: {count} utterances")


if __name__ == "__main__":
    main()
