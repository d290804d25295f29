"""Checkpoints of codec's archived zoo models (`codec.zoo.ARCHIVED` names them): versions that
newer ones pushed out of the codec package, kept so that their token files keep decoding."""

from pathlib import Path

MODEL_DIR = Path(__file__).parent
