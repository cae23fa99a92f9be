"""Fixtures shared by the test modules."""

import sys

import pytest


@pytest.fixture(scope="module")
def fast_simulator():
    """The CUDA simulator's block manager polls its threads; a short GIL switch interval helps.
    Module-scoped, so hypothesis tests can use it too (it is never reset between examples)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)
    yield
    sys.setswitchinterval(old)
