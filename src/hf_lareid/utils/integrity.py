"""Checks that the files this package reads are whole: one clear error naming the file and the fix.

- `check_safetensors`: a `model.safetensors` that is empty, truncated or has a damaged header.
- `check_torch_file`: a `.pt` / `.pth` that is not a PyTorch checkpoint at all (text, junk, an empty file, a plain
  pickle) or is truncated.
- `check_trainer_checkpoint` / `resolve_resume_checkpoint`: a Trainer `checkpoint-*` folder before resuming from it.
- `explain_model_load_error`: turns `from_pretrained`'s errors for a damaged file, weights of another shape, a
  `config.json` that describes no LA-Transformer, or a missing model name (offline Hub lookups) into such a line.
- `check_loading_info`: a model loads whole or not at all: weights missing from the file (a lost encoder block) or
  left over in it are an `IncompleteModelError` naming the file and the keys.

Only the standard library is imported at module level (safetensors errors are matched by name).
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import zipfile
from pathlib import Path

from .errors import DamagedFileError
from .io import file_sha256

logger = logging.getLogger(__name__)


CONFIG_NAME = "config.json"
# config.json records {weights file name: SHA-256} under this key; `verify_model_weights` checks it.
WEIGHTS_SHA256_KEY = "weights_sha256"
# The weight files transformers writes: model.safetensors, its shards and their index.
_WEIGHTS_FILE = re.compile(r"model(-\d{5}-of-\d{5})?\.safetensors(\.index\.json)?")


def record_weights_checksums(model_dir: str | os.PathLike) -> dict[str, str]:
    """Writes the SHA-256 of each weights file of a freshly saved model folder into its config.json (under
    `weights_sha256`) and returns them, `{file name: digest}`: what [`verify_model_weights`] checks later."""
    directory = Path(model_dir)
    weights = {
        entry.name: file_sha256(entry) for entry in sorted(directory.iterdir()) if _WEIGHTS_FILE.fullmatch(entry.name)
    }
    config_path = directory / CONFIG_NAME
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config[WEIGHTS_SHA256_KEY] = weights
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return weights


def remove_stale_weights(model_dir: str | os.PathLike, keep: dict[str, str]) -> None:
    """Deletes weights files of an earlier save under other names (e.g. shards) that `keep` does not list."""
    for entry in Path(model_dir).iterdir():
        if _WEIGHTS_FILE.fullmatch(entry.name) and entry.name not in keep and entry.is_file():
            entry.unlink()


class ModelWeightsMismatchError(DamagedFileError):
    """A weights file of a saved model is missing or differs from the SHA-256 its config.json records."""


def verify_model_weights(model_dir: str | os.PathLike) -> bool:
    """
    Checks the weights files of a model folder against the SHA-256 that `save_pretrained` recorded in config.json.

    Returns `True` when every recorded file matches, `False` when config.json records nothing (a model saved by
    another tool or an older hf_lareid). Raises [`ModelWeightsMismatchError`] naming the file that is missing or
    differs. Used by `lareid index`, `search`, `evaluate` and `serve` before loading their own files.

    Example:

    ```python
    >>> import tempfile
    >>> from hf_lareid import LATransformerConfig, LATransformerForReID
    >>> config = LATransformerConfig(
    ...     backbone_config={"model_type": "vit", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
    ...                      "intermediate_size": 64, "image_size": [32, 16], "patch_size": 8},
    ...     num_labels=4,
    ... )
    >>> model_dir = tempfile.mkdtemp()
    >>> LATransformerForReID(config).save_pretrained(model_dir)
    >>> verify_model_weights(model_dir)
    True
    ```
    """
    directory = Path(model_dir)
    config_path = directory / CONFIG_NAME
    try:
        recorded = json.loads(config_path.read_text(encoding="utf-8")).get(WEIGHTS_SHA256_KEY)
    except (OSError, ValueError, AttributeError):
        return False  # no readable config: from_pretrained reports that itself
    if not recorded:
        return False
    if not isinstance(recorded, dict):
        raise ModelWeightsMismatchError(
            f"{config_path}: {WEIGHTS_SHA256_KEY!r} must map file names to SHA-256 digests."
        )
    for name, expected in sorted(recorded.items()):
        path = directory / name
        if not path.is_file():
            raise ModelWeightsMismatchError(f"{path} is missing, but {config_path} records it. {WEIGHTS_FIX}")
        if file_sha256(path) != expected:
            if path.suffix == ".safetensors":
                check_safetensors(path)  # a truncated or unreadable file: say how it is damaged
            raise ModelWeightsMismatchError(
                f"{path} is damaged or comes from another save: it does not match the SHA-256 recorded in "
                f"{config_path}. {WEIGHTS_FIX}"
            )
    return True


__all__ = [
    "CONFIG_NAME",
    "ModelWeightsMismatchError",
    "WEIGHTS_SHA256_KEY",
    "record_weights_checksums",
    "remove_stale_weights",
    "verify_model_weights",
    "DamagedFileError",
    "IncompleteModelError",
    "check_loading_info",
    "check_safetensors",
    "check_torch_file",
    "check_trainer_checkpoint",
    "explain_model_load_error",
    "resolve_resume_checkpoint",
]

# torch.save's legacy (pre-1.6) format starts with a pickled magic number; the current one is a zip archive.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_ZIP_MAGIC = b"PK\x03\x04"
# What the Trainer writes last into a checkpoint folder: without it the save was interrupted.
TRAINER_STATE_NAME = "trainer_state.json"
TRAINER_TORCH_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state.pth")
_CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
_RESUME_LAST = {"true", "last", "latest", "yes", "1"}
_RESUME_NONE = {"", "false", "no", "none", "0"}


class IncompleteModelError(DamagedFileError):
    """A model's weights file lacks weights its config needs, or holds weights the config has no place for."""


WEIGHTS_FIX = "Save the model again, or copy a good model.safetensors into the folder."
HEAD_SWAP_FIX = (
    "to start new classifier heads on these weights, load with from_pretrained(..., num_labels=N, "
    "ignore_mismatched_sizes=True)"
)
TORCH_FILE_FIX = "Copy the file again, or pass the .pth/.pt file written by torch.save."


def check_safetensors(path: str | os.PathLike, fix: str = WEIGHTS_FIX) -> None:
    """
    Raise `DamagedFileError` naming `path` (and ending with `fix`) when it is not a whole safetensors file: too
    short for its header, a header that is not the JSON safetensors writes, or fewer bytes than the header's
    tensors need (truncated). Reads only the header.
    """
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as file:
        prefix = file.read(8)
        if len(prefix) < 8:
            raise DamagedFileError(f"{path} is damaged: {size} bytes, too short for a safetensors header. {fix}")
        (header_length,) = struct.unpack("<Q", prefix)
        if header_length > size - 8:
            raise DamagedFileError(
                f"{path} is damaged: its header claims {header_length} bytes but the file holds {size} (truncated or "
                f"not a safetensors file). {fix}"
            )
        try:
            tensors = {k: v for k, v in json.loads(file.read(header_length)).items() if k != "__metadata__"}
            ends = [int(entry["data_offsets"][1]) for entry in tensors.values()]
            if not all(isinstance(entry["dtype"], str) for entry in tensors.values()):
                raise TypeError("a dtype is not a string")
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as error:
            reason = f"its header is not valid safetensors JSON ({error!r})"
            raise DamagedFileError(f"{path} is damaged: {reason}. {fix}") from None
    needed = 8 + header_length + max(ends, default=0)
    if size < needed:
        raise DamagedFileError(f"{path} is damaged: truncated to {size} bytes, its header needs {needed}. {fix}")


def check_torch_file(path: str | os.PathLike, what: str = "a PyTorch checkpoint", fix: str = TORCH_FILE_FIX) -> None:
    """
    Raise `DamagedFileError` naming `path` when it is not `what` written by `torch.save` (an empty, text or junk
    file, a plain Python pickle) or is a truncated/damaged one. Reads the first bytes and the zip directory only.
    """
    path = Path(path)
    with path.open("rb") as file:
        head = file.read(len(_LEGACY_TORCH_MAGIC))
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                if not any(name.endswith("data.pkl") for name in archive.namelist()):
                    raise zipfile.BadZipFile("a zip archive without data.pkl")
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise DamagedFileError(f"{path} is damaged ({error}): it is truncated or not {what}. {fix}") from None
        return
    if head == _LEGACY_TORCH_MAGIC:
        return
    if not head:
        found = "an empty file"
    elif head[:1] == b"\x80":
        found = "a plain Python pickle"
    elif _is_text(head):
        found = "a text file"
    else:
        found = "bytes in no format PyTorch writes"
    raise DamagedFileError(f"{path} is not {what}: it is {found}. {fix}")


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(char.isprintable() or char.isspace() for char in text)


def _checkpoint_step(path: Path) -> int:
    match = _CHECKPOINT_PATTERN.match(path.name)
    return int(match.group(1)) if match else -1


def check_trainer_checkpoint(folder: str | os.PathLike) -> None:
    """
    Check a Trainer `checkpoint-*` folder before resuming: `trainer_state.json` readable (the Trainer writes it last,
    so its absence means the save was interrupted), the weights whole (`check_safetensors`) and the optimizer,
    scheduler, scaler and RNG states real `torch.save` files (`check_torch_file`). Raises `DamagedFileError` or
    `FileNotFoundError` naming the file and suggesting an earlier checkpoint.
    """
    folder = Path(folder)
    if not folder.is_dir():
        state = "is a file, not a checkpoint folder" if folder.exists() else "does not exist"
        raise FileNotFoundError(f"--resume_from_checkpoint {folder} {state}: pass a checkpoint-* folder of the run.")
    earlier = "Resume from an earlier checkpoint-* folder, or delete this one and pass --resume_from_checkpoint True."
    state_file = folder / TRAINER_STATE_NAME
    try:
        json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamagedFileError(
            f"{folder} is an incomplete checkpoint (no {TRAINER_STATE_NAME}: the run was stopped while saving it). "
            f"{earlier}"
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise DamagedFileError(f"{state_file} is damaged ({error}). {earlier}") from None
    weights = folder / "model.safetensors"
    if weights.is_file():
        check_safetensors(weights, fix=earlier)
    for name in TRAINER_TORCH_FILES:
        if (folder / name).is_file():
            check_torch_file(folder / name, what=f"the Trainer's {name}", fix=earlier)


def wants_resume(value: str | bool | None) -> bool:
    """Whether `--resume_from_checkpoint VALUE` asks to resume (`False`, `"false"`, `"none"`, `""` do not)."""
    return not (value is None or value is False or str(value).strip().lower() in _RESUME_NONE)


def resolve_resume_checkpoint(value: str | bool | None, output_dir: str | os.PathLike) -> str | None:
    """
    The checkpoint folder that `--resume_from_checkpoint VALUE` names: `None` for no resume; for `True` / `"last"`
    the newest complete `checkpoint-*` in `output_dir` (an incomplete newer one, left by a kill while saving, is
    skipped with a warning); else the given folder. Raises `FileNotFoundError` with one clear line when there is none.
    """
    if not wants_resume(value):
        return None
    if value is True or str(value).strip().lower() in _RESUME_LAST:
        output = Path(output_dir)
        folders = [path for path in (output.iterdir() if output.is_dir() else ()) if path.is_dir()]
        candidates = sorted(
            (path for path in folders if _checkpoint_step(path) >= 0), key=_checkpoint_step, reverse=True
        )
        for candidate in candidates:
            if (candidate / TRAINER_STATE_NAME).is_file():
                return str(candidate)
            logger.warning("Skipping %s: incomplete (no %s, stopped while saving it).", candidate, TRAINER_STATE_NAME)
        found = "holds only incomplete checkpoint-* folders" if candidates else "holds no checkpoint-* folder"
        raise FileNotFoundError(
            f"--resume_from_checkpoint {value}: {output} {found} to resume from. Train without "
            "--resume_from_checkpoint to start afresh, or pass the --output_dir of the interrupted run."
        )
    return str(value)


def _safetensors_error(error: BaseException) -> bool:
    return type(error).__name__ == "SafetensorError" or "deserializing header" in str(error)


def _explain_file_error(reference: str | os.PathLike, local: Path, error: BaseException) -> Exception | None:
    """The damaged-weights and offline-Hub cases of [`explain_model_load_error`]."""
    if _safetensors_error(error):
        if local.is_dir():
            for weights in sorted(local.glob("*.safetensors")):
                try:
                    check_safetensors(weights)
                except DamagedFileError as damaged:
                    return damaged
            return DamagedFileError(
                f"the weights in {local} are damaged ({error}). Save the model again, or copy good *.safetensors files."
            )
        return DamagedFileError(f"the weights of {reference} are damaged ({error}); download or save them again.")
    if isinstance(error, OSError) and not local.exists():
        message = str(error).lower()
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE or "connect" in message or "offline" in message or "network" in message:
            return FileNotFoundError(
                f"model {str(reference)!r} does not exist locally (no such folder), and a Hub id needs network, which "
                "is unavailable or switched off (HF_HUB_OFFLINE). Pass a folder written by save_pretrained (e.g. "
                "`lareid train --output_dir`), or go online to download a Hub model."
            )
    return None


def _weights_name(reference: str | os.PathLike) -> str:
    """The weights file of a local model folder (`FOLDER/model.safetensors`), else the reference itself."""
    local = Path(reference).expanduser()
    if local.is_dir():
        files = sorted(local.glob("*.safetensors")) or sorted(local.glob("*.bin"))
        return str(files[0]) if len(files) == 1 else str(local)
    return str(reference)


def _key_list(keys: list[str], limit: int = 4) -> str:
    """`a, b, c, d and 12 more`: enough keys to see which part of the model they belong to."""
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_loading_info(reference: str | os.PathLike, info: dict, config_name: str = "config.json") -> None:
    """
    Raises `IncompleteModelError` when `from_pretrained(reference, output_loading_info=True)` reported weights that
    the config needs but the file lacks (`missing_keys`: they would be random) or weights of the file that the model
    has no place for (`unexpected_keys`). The message names the weights file and the keys. Mismatched shapes that
    the caller allowed (`ignore_mismatched_sizes=True`, a head swap) are not checked here.
    """
    missing, unexpected = list(info.get("missing_keys") or ()), list(info.get("unexpected_keys") or ())
    if not (missing or unexpected):
        return
    weights = _weights_name(reference)
    parts = []
    if missing:
        parts.append(f"it lacks {len(missing)} weights that {config_name} needs ({_key_list(missing)})")
    if unexpected:
        parts.append(f"it holds {len(unexpected)} weights the model has no place for ({_key_list(unexpected)})")
    raise IncompleteModelError(
        f"{weights} does not match its {config_name}: {'; '.join(parts)}. The file is from another model or a partial "
        f"save, and a model never loads with random weights in their place. {WEIGHTS_FIX}"
    )


def _config_problem(local: Path, model_type: str) -> str | None:
    """Why `local/config.json` describes no LA-Transformer (`None` when it does or cannot be read)."""
    try:
        config = json.loads((local / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict):
        return "it is not a JSON object"
    if not config:
        return "it is empty ({})"
    if config.get("model_type") in (None, model_type) and "backbone_config" not in config:
        return f"it has no backbone_config (and needs model_type {model_type!r})"
    return None  # another model type: from_pretrained's own message names it


def explain_model_load_error(
    reference: str | os.PathLike, error: BaseException, model_type: str = "la-transformer"
) -> Exception | None:
    """
    A clearer error for what `from_pretrained(reference)` raised, or `None` to keep the original: a damaged weights
    file in a local folder is named (`DamagedFileError`); weights of other shapes than `config.json` describes, or a
    `config.json` that describes no LA-Transformer (e.g. `{}`), name both files and the fix (`IncompleteModelError`);
    a name that is no local folder, looked up on the Hub without network, says so (`FileNotFoundError`).
    """
    if not isinstance(reference, (str, os.PathLike)):
        return None
    local = Path(reference).expanduser()
    if local.is_dir() and not _safetensors_error(error):
        problem = _config_problem(local, model_type)
        if problem is not None:
            return IncompleteModelError(
                f"{local / 'config.json'} does not describe the model in {_weights_name(local)}: {problem}. Copy the "
                "config.json saved with these weights, or save the model again."
            )
        if "ignore_mismatched_sizes" in str(error):
            return IncompleteModelError(
                f"the weights in {_weights_name(local)} have other shapes than {local / 'config.json'} describes (the "
                f"config of another model, or another num_labels). Copy the config.json saved with these weights; "
                f"{HEAD_SWAP_FIX}."
            )
    return _explain_file_error(reference, local, error)
