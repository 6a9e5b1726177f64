"""Fixtures shared by the driver-part tests: the tiny default, built once per session."""
import pytest

from megatron_mc.data.tiny_default import prepare_tiny_default


@pytest.fixture(scope="session")
def tiny_default(tmp_path_factory):
    return prepare_tiny_default(tmp_path_factory.mktemp("mc_cache") / "tiny_default")
