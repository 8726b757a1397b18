"""DDP with 2 CPU processes (torchrun, gloo): blockwise unfreezing trains and synchronises a block unfrozen mid-run;
the retrieval evaluation embeds one shard per rank and gives the single-process metrics."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

WORKER = Path(__file__).with_name("ddp_worker.py")
EVAL_WORKER = Path(__file__).with_name("ddp_eval_worker.py")
# The workers import training_helpers (beside them) and model_factories (in tests/).


def run_worker(output_dir: Path, processes: int, worker: Path = WORKER) -> None:
    launcher = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}", "--standalone"]
    command = (launcher if processes > 1 else [sys.executable]) + [str(worker), str(output_dir)]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(WORKER.parent), str(WORKER.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
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


def test_two_process_evaluation_embeds_one_shard_per_rank_with_the_single_process_metrics(tmp_path):
    run_worker(tmp_path / "ddp", processes=2, worker=EVAL_WORKER)
    run_worker(tmp_path / "single", processes=1, worker=EVAL_WORKER)
    ranks = [torch.load(tmp_path / "ddp" / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    single = torch.load(tmp_path / "single" / "rank0.pt", weights_only=True)

    assert [r["world_size"] for r in ranks] == [2, 2] and single["world_size"] == 1
    # 9 query + 8 gallery images: rank 0 embeds 5 + 4, rank 1 embeds 4 + 4; nothing is embedded twice.
    assert single["embedded"] == 17 and [r["embedded"] for r in ranks] == [9, 8]
    names = ("eval_rank1", "eval_rank5", "eval_rank10", "eval_mAP", "eval_mINP")
    expected = [single["metrics"][name] for name in names]
    assert 0 < single["metrics"]["eval_mAP"] < 1  # a random model: the metrics are not trivially 0 or 1
    for rank in ranks:  # every rank gets the metrics (early stopping and best-model selection run on all)
        assert [rank["metrics"][name] for name in names] == pytest.approx(expected, abs=1e-6)
