"""Checkpoints of codec's archived zoo models (`codec.zoo.ARCHIVED` names them): versions that
newer ones pushed out of the codec package, kept so that their token files keep decoding. Each
is stored xz-compressed (`NAME.ckpt.xz`, a fifth smaller); codec unpacks it into its cache on
first use."""

from pathlib import Path

MODEL_DIR = Path(__file__).parent
