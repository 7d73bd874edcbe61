import sys
sys.path.insert(0, "/work/main")
from tests.ddp import run_distributed

def worker(rank, world_size):
    from vltasks.metrics.caption import CaptionMetrics
    m = CaptionMetrics(tokenizer="none")
    if rank == 0:
        m.update(["a b c", "d e f"], [["a b c"], ["d e"]], ids=["x", "y"])
    return {k: float(v) for k, v in m.compute().items()}

if __name__ == "__main__":
    print(run_distributed(worker, 2))
