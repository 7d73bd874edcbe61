"""Two "nodes" on one machine, started as a user starts them: one ``torchrun --nnodes=2
--nproc-per-node=1 --node-rank=R --master-addr=127.0.0.1`` per node, each running the CLI. gloo on
CPU; the rendezvous is torchrun's static one (node 0 hosts the store)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NODE_ENV = {
    **os.environ,
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",  # two processes on a small machine: one thread each
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_nodes(
    args: list[str], nodes: int = 2, timeout: float = 900, module: str = "vltasks.cli", per_node: int = 1
) -> list[str]:
    """Run ``python -m MODULE ARGS`` on ``nodes`` torchrun nodes of ``per_node`` processes each (the
    CLI, or `tests.cli_sequence` for several CLI runs in one launch); returns each node's output
    (rank 0 first) after checking that every node exited 0."""
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                f"--nnodes={nodes}",
                f"--nproc-per-node={per_node}",
                f"--node-rank={rank}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                module,
                *args,
            ],  # fmt: skip
            cwd=REPO,
            env=NODE_ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(nodes)
    ]
    outs = []
    try:
        for p in procs:
            outs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, f"node {rank} exited {p.returncode}:\n{out[-6000:]}"
    return outs


def on_nodes(nodes: int = 2, per_node: int = 1) -> list[str]:
    """The overrides that tell the Trainer what torchrun started."""
    return [f"trainer.num_nodes={nodes}", f"trainer.devices={per_node}", "trainer.accelerator=cpu"]
