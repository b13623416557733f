"""The engine's own tests run on one intra-op thread, as tests/algorithms do (tiny models)."""

import pytest


@pytest.fixture(autouse=True)
def _single_thread(one_thread):
    """Every engine test on one intra-op thread (tests/conftest.py says why)."""
