"""A Hugging Face Space (Gradio SDK) serving the hf-lareid web app: gallery search and person comparison.

Configured by environment variables (Space "Variables"):

- `LAREID_INDEX_DIR`: a gallery index folder written by `lareid index`, or
- `LAREID_INDEX_REPO`: a Hub repo holding one (`LAREID_INDEX_REPO_TYPE`, default `dataset`; the index in
  `LAREID_INDEX_SUBFOLDER`, default the repo root), downloaded with `huggingface_hub.snapshot_download`;
- `LAREID_MODEL` (optional): the model folder or Hub id; default: the one the index records (a Hub id, for a Space).
  A model with another fingerprint than the index's is refused.

Run locally: `LAREID_INDEX_DIR=./lareid-demo/gallery_index python spaces/app.py`.
"""

import os
from pathlib import Path

from hf_lareid.web.app import launch_app
from hf_lareid.web.service import ReIDService


def index_folder() -> Path:
    """The index folder the environment names, downloaded from the Hub when it names a repo."""
    local = os.environ.get("LAREID_INDEX_DIR")
    repo = os.environ.get("LAREID_INDEX_REPO")
    if bool(local) == bool(repo):
        raise SystemExit(
            "set exactly one of LAREID_INDEX_DIR (a folder written by `lareid index`) or LAREID_INDEX_REPO (a Hub "
            "repo id holding one)."
        )
    if local:
        return Path(local)
    from huggingface_hub import snapshot_download

    downloaded = snapshot_download(repo, repo_type=os.environ.get("LAREID_INDEX_REPO_TYPE", "dataset"))
    return Path(downloaded) / os.environ.get("LAREID_INDEX_SUBFOLDER", "")


def load_service() -> ReIDService:
    """The index and its model (or `LAREID_MODEL`), as `lareid serve` loads them."""
    return ReIDService.load(index_folder(), model=os.environ.get("LAREID_MODEL") or None)


if __name__ == "__main__":
    # Spaces set GRADIO_SERVER_NAME=0.0.0.0 and the port; locally the page stays on this machine.
    launch_app(
        load_service(),
        host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    )
