"""Fixtures of the judge tests: one real judge pool for the whole session."""
import pytest

from judge.pool import JudgePool


@pytest.fixture(scope="session")
def judge_pool():
    with JudgePool(workers=2) as pool:
        yield pool
