"""`lareid index` and `lareid evaluate` on 2 CPU processes (torchrun, gloo) equal one process; a killed build resumes.

`market_dir` (tests/conftest.py): 15 gallery images (shards of 8 and 7 on two processes), 12 queries."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from cli_helpers import run_index

from hf_lareid.cli.index_shards import shard_store
from hf_lareid.cli.main import main
from hf_lareid.embedding.sharding import check_launch
from hf_lareid.retrieval import GalleryIndex


def torchrun(*argv, fault=None):
    """`lareid ARGV` on 2 processes; returns the completed process."""
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "hf_lareid.cli.main",
        *map(str, argv),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("HF_LAREID_FAULT", None)
    if fault:
        env["HF_LAREID_FAULT"] = fault
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def index_contents(index_dir):
    index = GalleryIndex.load(index_dir)
    return index, index._index.reconstruct_n(0, len(index))


def test_two_process_index_equals_one_process_and_resumes_after_a_kill(tiny_model_dir, market_dir, tmp_path, capsys):
    common = ["index", tiny_model_dir, "--dataset", "market1501", "--data_dir", market_dir, "--checkpoint_every", "4"]
    assert main([*map(str, common), "--index_dir", str(tmp_path / "single")]) == 0
    single, single_vectors = index_contents(tmp_path / "single")

    index_dir = tmp_path / "two"
    # Rank 0 is killed right after storing the second chunk (round 1: 4 images of each rank).
    killed = torchrun(*common, "--index_dir", index_dir, fault="index:shard-chunk@2=kill")
    assert killed.returncode != 0
    assert not index_dir.exists() and len(list(shard_store(index_dir).glob("chunk-*.npz"))) == 2

    # The same killed build resumed by ONE process (a copy of the chunks) gives the same index too.
    shutil.copytree(shard_store(index_dir), shard_store(tmp_path / "resumed-alone"))
    assert main([*map(str, common), "--index_dir", str(tmp_path / "resumed-alone")]) == 0
    assert "8 images embedded, 7 to go (world size 1)" in capsys.readouterr().out

    result = torchrun(*common, "--index_dir", index_dir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Each rank skips the 4 images of its shard already stored: 8 done, 7 to go.
    assert f"resuming {index_dir}: 8 images embedded, 7 to go (world size 2)" in result.stdout
    assert result.stdout.count("indexed 15 new images") == 1  # only rank 0 prints
    two, two_vectors = index_contents(index_dir)
    assert len(single) == len(two) == 15
    assert two.paths == single.paths
    np.testing.assert_array_equal(two.person_ids, single.person_ids)
    np.testing.assert_array_equal(two.camera_ids, single.camera_ids)
    np.testing.assert_allclose(two_vectors, single_vectors, atol=1e-6, rtol=0)
    assert two.model_fingerprint == single.model_fingerprint and two.embedding_settings == single.embedding_settings
    assert not shard_store(index_dir).exists()  # the chunks are in the index now
    alone, alone_vectors = index_contents(tmp_path / "resumed-alone")
    assert alone.paths == single.paths and not shard_store(tmp_path / "resumed-alone").exists()
    np.testing.assert_allclose(alone_vectors, single_vectors, atol=1e-6, rtol=0)


def test_two_process_evaluate_gives_the_one_process_metrics(tiny_model_dir, market_dir, tmp_path):
    common = ["evaluate", tiny_model_dir, "--dataset", "market1501", "--data_dir", market_dir, "--batch_size", "4"]
    assert main([*map(str, common), "--output_json", str(tmp_path / "single.json")]) == 0
    result = torchrun(*common, "--output_json", tmp_path / "two.json")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.count("wrote ") == 1  # rank 0 alone prints and writes
    single = json.loads((tmp_path / "single.json").read_text())["results"][0]
    two = json.loads((tmp_path / "two.json").read_text())["results"][0]
    assert single["num_queries"] == two["num_queries"] == 12
    for name in ("rank1", "rank5", "mAP", "mINP"):
        assert two[name] == pytest.approx(single[name], abs=1e-6)


def test_a_launch_with_fewer_processes_than_asked_is_refused(tiny_model_dir, market_dir, tmp_path, monkeypatch, capsys):
    with pytest.raises(RuntimeError, match="starts ONE process"):  # accelerate launch --cpu --num_processes 2
        check_launch({"ACCELERATE_USE_CPU": "True", "MASTER_ADDR": "127.0.0.1"})
    with pytest.raises(RuntimeError, match="2 processes were asked for"):
        check_launch({"ACCELERATE_NUM_PROCESSES": "2", "WORLD_SIZE": "1"})
    check_launch({"ACCELERATE_NUM_PROCESSES": "2", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"})
    check_launch({})
    monkeypatch.setenv("ACCELERATE_USE_CPU", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    status, _, err = run_index(tiny_model_dir, market_dir, tmp_path / "index", capsys=capsys)
    assert status == 1 and len(err.strip().splitlines()) == 1 and "--multi_gpu" in err
    assert not (tmp_path / "index").exists()
