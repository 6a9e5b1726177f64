"""Suite-wide settings: Ray without auth tokens, GPU tests skipped where there is no CUDA device, and how
`pytest -n N` (pytest-xdist, as `make test` runs the suite) shares the tests among its workers."""
import os

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _scope(item.nodeid) != REHEARSALS)  # rehearsals first; stable for the rest
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


# Each rehearsal runs a simulated cluster of 8-16 train ranks and 4 engines (about 11 GB, minutes): they run
# one after another on one worker, from the start of the session, while the other workers take the rest.
REHEARSALS = "tests/rehearsal/"


def _scope(nodeid: str) -> str:
    """A test file's tests run on one worker, so module fixtures (a Ray cluster, a train group) start once."""
    return REHEARSALS if nodeid.startswith(REHEARSALS) else nodeid.split("::", 1)[0]


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class RehearsalsFirst(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _scope(nodeid)

    config.option.loadscopereorder = False  # keep the collection order: rehearsals first (pytest_collection_modifyitems)
    return RehearsalsFirst(config, log)
