"""Test-session settings shared by every test module."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def private_model_cache(tmp_path_factory):
    """The runtime's exported graphs go to a cache of the session's own (the CLI's default
    backend exports the test models on first use), not to the user's ~/.cache/codec."""
    os.environ["CODEC_CACHE"] = str(tmp_path_factory.mktemp("codec_cache"))
    yield
    del os.environ["CODEC_CACHE"]
