"""Which GPU does what: train ranks and engines, colocated (time-shared) or disaggregated (split)."""
from __future__ import annotations

from dataclasses import dataclass

MULTI_NODE_ENGINES = ("multi-node SGLang engines (--nnodes, --node-rank, --dist-init-addr) are not supported: "
                      "each engine runs on the GPUs of one node")


@dataclass(frozen=True)
class Placement:
    mode: str  # colocate | disaggregate
    gpus_per_node: int
    total_gpus: int
    train_gpus: list[int]  # global GPU indices, node-major
    engines: list[list[int]]  # the GPUs of each engine

    def roles(self, gpu: int) -> str:
        roles = []
        if gpu in self.train_gpus:
            roles.append(f"train rank {self.train_gpus.index(gpu)}")
        for index, gpus in enumerate(self.engines):
            if gpu in gpus:
                roles.append(f"engine {index}" + (f" (tp rank {gpus.index(gpu)})" if len(gpus) > 1 else ""))
        return " + ".join(roles) or "idle"

    def rows(self) -> list[tuple[int, int, str]]:
        return [(gpu // self.gpus_per_node, gpu % self.gpus_per_node, self.roles(gpu)) for gpu in range(self.total_gpus)]


def place(mode: str, num_nodes: int, gpus_per_node: int, engine_gpus: int, num_engines: int,
          engine_tp: int) -> Placement:
    """Colocated: engines share the first GPUs with the train ranks. Disaggregated: the last
    `engine_gpus` GPUs serve and the rest train. An engine never spans two nodes (its tensor-parallel
    group talks over NVLink)."""
    total = num_nodes * gpus_per_node
    serving_count = num_engines * engine_tp
    if mode == "colocate":
        train, serving = list(range(total)), list(range(serving_count))
    else:
        if serving_count != engine_gpus:
            raise ValueError(f"{num_engines} engines x tp {engine_tp} = {serving_count} GPUs, "
                             f"but cluster.engine_gpus is {engine_gpus}")
        train, serving = list(range(total - engine_gpus)), list(range(total - engine_gpus, total))
    engines = [serving[i:i + engine_tp] for i in range(0, serving_count, engine_tp)]
    for gpus in engines:
        if len({g // gpus_per_node for g in gpus}) > 1:
            raise ValueError(f"an engine on GPUs {gpus} would span two nodes ({MULTI_NODE_ENGINES}); make "
                             f"rollout.tp_size divide cluster.gpus_per_node and the engine GPUs start on a node "
                             f"boundary")
    return Placement(mode, gpus_per_node, total, train, engines)
