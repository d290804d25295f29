"""Evaluation: token usage statistics and (later) audio quality metrics."""
