"""Whether this process runs in a rehearsal, where Ray's GPUs are declared but not there
(megatron_mc.rehearsal.cluster sets the variable before the simulated nodes start, so every worker and
server inherits it). GPU bookkeeping (shares, GPU ids, the memory ledger) runs as on a cluster; the
compute runs on CPU."""
from __future__ import annotations

import os

SIMULATED_GPUS_ENV = "MEGATRON_MC_SIMULATED_GPUS"


def simulated() -> bool:
    return os.environ.get(SIMULATED_GPUS_ENV) == "1"
