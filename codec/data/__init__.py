"""Corpora: Kaldi data directories and the audio they point to."""
