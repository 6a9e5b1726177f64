"""Small helpers shared by tests in several folders."""
import asyncio
import contextlib
import threading
import socket
import stat
from pathlib import Path

FAKE_SRUN = """#!/usr/bin/env bash
# srun for one machine: drop srun's own options, run the command in place
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    -w|-N|-n|--nodelist) shift 2 ;;
    *) shift ;;
  esac
done
exec "$@"
"""


def write_executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SIMULATED_NODE_PREFIX = "simnode"

# `scontrol show hostnames LIST` for a simulated job: the node names, one a line.
_FAKE_SCONTROL = """#!/usr/bin/env bash
if [[ $1 == show && $2 == hostnames ]]; then
  printf '%s\\n' {nodes}
else
  echo "simulated scontrol: unsupported: $*" >&2
  exit 2
fi
"""

# srun for a simulated multi-node job: `-w NODE` runs the command here as that node, whose address is
# 127.0.0.(k+2) for the k-th node (SIM_NODE_IP, which the fake `ip` reports); every call is logged to
# srun_calls.log as "NODE<TAB>srun's options"; a node listed in SIM_DEAD_NODES fails like a lost node.
_FAKE_MULTINODE_SRUN = """#!/usr/bin/env bash
nodes=({nodes})
node=""
options=()
while [[ $# -gt 0 && $1 == -* ]]; do
  case $1 in
    -w|--nodelist) node=$2; options+=("$1" "$2"); shift 2 ;;
    -N|-n) options+=("$1" "$2"); shift 2 ;;
    *) options+=("$1"); shift ;;
  esac
done
printf '%s\\t%s\\n' "$node" "${{options[*]}}" >>"{log}"
for k in "${{!nodes[@]}}"; do
  if [[ ${{nodes[k]}} == "$node" ]]; then
    export SIM_NODE_IP=127.0.0.$((k + 2))
    delay=$((k * 5))
  fi
done
if [[ -z ${{SIM_NODE_IP:-}} ]]; then
  echo "srun: error: simulated job has no node '$node'" >&2
  exit 1
fi
if [[ " ${{SIM_DEAD_NODES:-}} " == *" $node "* ]]; then
  echo "srun: error: $node: task 0: Exited with exit code 1 (simulated lost node)" >&2
  exit 1
fi
# The simulated nodes share one /tmp, where each raylet names its sockets in the session folder: started
# in the same instant, two took the same name (plasma store: "bind: Address already in use"). Real nodes
# have a /tmp each; here node k starts k * 5 s after the first.
if [[ ${{SIM_STAGGER:-1}} == 1 ]]; then sleep "${{delay:-0}}"; fi
exec "$@"
"""

# `ip` on a simulated node: one interface, lo, carrying SIM_NODE_IP.
_FAKE_IP = """#!/usr/bin/env bash
case "$*" in
  *"route show"*) echo "default via ${SIM_NODE_IP} dev lo" ;;
  *"addr show"*) echo "1: lo    inet ${SIM_NODE_IP}/8 scope host lo\\       valid_lft forever preferred_lft forever" ;;
  *) echo "simulated ip: unsupported: $*" >&2; exit 2 ;;
esac
"""


def simulated_node_ip(k: int) -> str:
    return f"127.0.0.{k + 2}"


def simulated_slurm(bin_dir: Path, num_nodes: int, path: str) -> dict:
    """A simulated Slurm job of num_nodes nodes on this machine: writes `scontrol`, `srun` and `ip` into
    bin_dir and returns the environment entries for the batch script, which runs on node 0. Each srun'd
    command sees its node's loopback address (node k: 127.0.0.(k+2)) through `ip`, so what it binds is
    that node's. Set SIM_DEAD_NODES="simnode1 ..." to make those nodes' sruns fail."""
    nodes = " ".join(f"{SIMULATED_NODE_PREFIX}{k}" for k in range(num_nodes))
    bin_dir.mkdir(parents=True, exist_ok=True)
    write_executable(bin_dir / "scontrol", _FAKE_SCONTROL.format(nodes=nodes))
    write_executable(bin_dir / "srun", _FAKE_MULTINODE_SRUN.format(nodes=nodes, log=bin_dir / "srun_calls.log"))
    write_executable(bin_dir / "ip", _FAKE_IP)
    return {"PATH": f"{bin_dir}:{path}", "SLURM_JOB_NODELIST": f"{SIMULATED_NODE_PREFIX}[0-{num_nodes - 1}]",
            "SLURM_NNODES": str(num_nodes), "SIM_NODE_IP": simulated_node_ip(0), "NET_IF": "lo"}


def srun_calls(bin_dir: Path) -> list[tuple[str, str]]:
    """(node, srun options) of every call the simulated srun received, in order."""
    log = bin_dir / "srun_calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [tuple(line.split("\t", 1)) for line in lines]


@contextlib.contextmanager
def simulated_ray_nodes(*nodes: dict):
    """A Ray cluster of simulated nodes joined by this process: node i (num_cpus, num_gpus, ...) on loopback
    address 127.0.0.(i+2), so nothing binds the machine's own address (a plain ray.init would)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={**nodes[0], "node_ip_address": "127.0.0.2",
                                                            "include_dashboard": False})
    for index, node in enumerate(nodes[1:], start=1):
        cluster.add_node(**node, node_ip_address=f"127.0.0.{index + 2}")
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def no_progress(iterable, total=None, desc=""):
    """A progress callback that shows nothing (stages take one)."""
    return iterable


class LoopbackApp:
    """A real aiohttp server on 127.0.0.1 (a free port), run on its own event loop in a thread, for tests
    that need an HTTP endpoint speaking someone else's API. Subclasses add their routes in `routes`;
    `url` is set once the server listens."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.url: str | None = None

    def routes(self, app) -> None:
        raise NotImplementedError

    def __enter__(self):
        from aiohttp import web

        started = threading.Event()

        def serve():
            asyncio.set_event_loop(self.loop)
            app = web.Application()
            self.routes(app)
            self.runner = web.AppRunner(app)
            self.loop.run_until_complete(self.runner.setup())
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            self.loop.run_until_complete(site.start())
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()
        if not started.wait(10):
            raise RuntimeError("the loopback server did not start within 10 s")
        return self

    def __exit__(self, *exc):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
