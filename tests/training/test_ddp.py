"""Blockwise unfreezing under DDP: 2 CPU processes (torchrun, gloo) train and synchronise a block unfrozen mid-run."""

import os
import subprocess
import sys
from pathlib import Path

import torch

WORKER = Path(__file__).with_name("ddp_worker.py")


def run_worker(output_dir: Path, processes: int) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", "--standalone"]
    command = (launcher if processes > 1 else [sys.executable]) + [str(WORKER), str(output_dir)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(WORKER.parent), os.environ.get("PYTHONPATH", "")])}
    env["OMP_NUM_THREADS"] = "1"
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_two_process_ddp_trains_and_synchronises_unfrozen_blocks(tmp_path):
    run_worker(tmp_path / "ddp", processes=2)
    run_worker(tmp_path / "single", processes=1)
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    single = torch.load(tmp_path / "single" / "rank0.pt", weights_only=True)

    assert [r["world_size"] for r in ranks] == [2, 2] and single["world_size"] == 1
    # Both processes end with identical weights (gradients were all-reduced, also for blocks unfrozen later).
    # BatchNorm running statistics are buffers: DDP broadcasts rank 0's at each forward, and the last forward
    # updates each rank's own copy, so they are left out.
    for name, tensor in ranks[0]["final"].items():
        if "running_" in name or "num_batches_tracked" in name:
            continue
        torch.testing.assert_close(tensor, ranks[1]["final"][name], rtol=0, atol=0, msg=name)
    initial, final = ranks[0]["initial"], ranks[0]["final"]
    changed = lambda prefix: any(  # noqa: E731
        not torch.equal(final[n], initial[n]) for n in final if n.startswith(prefix)
    )
    # t=1, 3 epochs, 4 blocks: blocks 3, 2, 1 unfreeze at epochs 0, 1, 2; block 1 only in the last epoch.
    assert changed("vit.layers.1.") and changed("vit.layers.2.") and changed("vit.layers.3.")
    # Still frozen: no gradient at all (not a zero gradient, which Adam's weight decay would turn into a step).
    assert not changed("vit.layers.0.") and not changed("vit.embeddings.")
    # The schedule of trainable blocks and learning rates is the single-process one.
    assert ranks[0]["schedule"] == ranks[1]["schedule"] == single["schedule"] == [(1, 5e-4), (2, 2.5e-4), (3, 1.25e-4)]
