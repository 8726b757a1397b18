"""file_utils: atomic files and folders, staged replaces, the folder lock, crash recovery and the fault hook."""

import errno
import os
import stat
import subprocess
import sys
import textwrap

import pytest

from hf_lareid.utils.io import (
    FAULT_ENV,
    FolderBusyError,
    atomic_folder,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    fault_point,
    folder_lock,
    recover_folder,
    staged_replace,
)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def listing(folder):
    return sorted(os.listdir(folder))


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_files_get_the_users_normal_mode(tmp_path, umask_022):
    atomic_write_text(tmp_path / "card.md", "hello")
    with atomic_path(tmp_path / "figure.png") as temporary:
        temporary.write_bytes(b"png")
    with atomic_folder(tmp_path / "export") as folder:
        (folder / "a.txt").write_text("a")
    assert mode(tmp_path / "card.md") == mode(tmp_path / "figure.png") == 0o644
    assert mode(tmp_path / "export") == 0o755 and mode(tmp_path / "export" / "a.txt") == 0o644
    os.umask(0o077)
    atomic_write_text(tmp_path / "private.txt", "x")
    assert mode(tmp_path / "private.txt") == 0o600  # the umask decides, as for open(path, "w")


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path, monkeypatch):
    target = atomic_write_text(tmp_path / "notes.txt", "old")
    monkeypatch.setenv(FAULT_ENV, "write:notes.txt")
    with pytest.raises(OSError) as raised:
        atomic_write_text(target, "new")
    assert raised.value.errno == errno.ENOSPC
    assert target.read_text() == "old" and listing(tmp_path) == ["notes.txt"]
    monkeypatch.delenv(FAULT_ENV)
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("writer crashed")
    assert target.read_text() == "old" and listing(tmp_path) == ["notes.txt"]
    assert atomic_write_bytes(target, b"new").read_text() == "new"


def test_fault_spec_counts_occurrences_and_rejects_unknown_actions(monkeypatch):
    monkeypatch.setenv(FAULT_ENV, "index:*@2, other=interrupt")
    fault_point("index:checkpoint")  # the first time passes
    with pytest.raises(OSError, match="No space left"):
        fault_point("index:checkpoint")
    fault_point("index:checkpoint")  # only the 2nd
    with pytest.raises(KeyboardInterrupt):
        fault_point("other")
    monkeypatch.setenv(FAULT_ENV, "x=explode")
    with pytest.raises(ValueError, match="unknown action"):
        fault_point("x")


def test_atomic_folder_refuses_replaces_and_restores(tmp_path, monkeypatch):
    target = tmp_path / "index"
    with atomic_folder(target) as folder:
        (folder / "v").write_text("1")
    with pytest.raises(FileExistsError):
        with atomic_folder(target):
            pass
    with atomic_folder(target, replace_existing=True) as folder:
        (folder / "v").write_text("2")
    assert (target / "v").read_text() == "2" and listing(tmp_path) == ["index"]
    monkeypatch.setenv(FAULT_ENV, "swap:index")  # the old folder is aside when the fault hits: it is put back
    with pytest.raises(OSError):
        with atomic_folder(target, replace_existing=True) as folder:
            (folder / "v").write_text("3")
    assert (target / "v").read_text() == "2" and listing(tmp_path) == ["index"]


def test_recover_folder_after_a_kill_between_the_renames(tmp_path):
    target = tmp_path / "index"
    with atomic_folder(target) as folder:
        (folder / "v").write_text("1")
    script = textwrap.dedent(f"""
        from hf_lareid.utils.io import atomic_folder
        with atomic_folder({str(target)!r}, replace_existing=True) as folder:
            (folder / "v").write_text("2")
    """)
    run = subprocess.run([sys.executable, "-c", script], env={**os.environ, FAULT_ENV: "swap:index=kill"})
    assert run.returncode == -9
    assert not target.exists() and any(".index.old-" in name for name in listing(tmp_path))
    done = recover_folder(target)
    assert any("restored" in line for line in done) and any(".index.tmp-" in line for line in done)
    assert listing(tmp_path) == ["index"] and (target / "v").read_text() == "1"
    assert recover_folder(target) == []  # nothing left to do


def test_staged_replace_puts_config_last_and_keeps_other_files(tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    for name, text in {"config.json": "old config", "model.safetensors": "old weights", "notes.txt": "mine"}.items():
        (model / name).write_text(text)
    (model / "checkpoint-4").mkdir()
    monkeypatch.setenv(FAULT_ENV, "replace:config.json=interrupt")  # Ctrl-C after the weights, before the config
    with pytest.raises(KeyboardInterrupt):
        with staged_replace(model) as staging:
            (staging / "config.json").write_text("new config")
            (staging / "model.safetensors").write_text("new weights")
    assert (model / "model.safetensors").read_text() == "new weights"  # weights went first
    assert (model / "config.json").read_text() == "old config"
    assert listing(model) == ["checkpoint-4", "config.json", "model.safetensors", "notes.txt"]
    monkeypatch.setenv(FAULT_ENV, "write:model.safetensors")  # a full disk while staging: nothing changes
    with pytest.raises(OSError):
        with staged_replace(model) as staging:
            (staging / "config.json").write_text("newer config")
            (staging / "model.safetensors").write_text("newer weights")
    assert (model / "config.json").read_text() == "old config"
    assert (model / "model.safetensors").read_text() == "new weights"
    assert listing(model) == ["checkpoint-4", "config.json", "model.safetensors", "notes.txt"]


LOCK_HOLDER = """
import sys
from hf_lareid.utils.io import folder_lock
with folder_lock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.readline()
"""


def test_folder_lock_keeps_a_second_process_out_and_is_reentrant(tmp_path):
    target = tmp_path / "index"
    with folder_lock(target):
        with folder_lock(target):  # re-entrant in one process
            pass
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(FolderBusyError, match="another process is writing"):
            with folder_lock(target):
                pass
    finally:
        holder.stdin.close()
        holder.wait()
    with folder_lock(target):  # free again once the holder is done
        pass
