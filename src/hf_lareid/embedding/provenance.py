"""`Provenance`: everything that decides which vector an image becomes, as one value.

A vector depends on the model (its weights and every config field its forward reads), on how images are prepared
(the image processor's resize/rescale/normalise settings, flip test-time augmentation) and, slightly, on how the
model is run (runtime, bf16, device, torch version). A [`ReIDEncoder`] describes itself with a `Provenance`; a
gallery index records the one its embeddings came from and compares it with the queries' through
[`Provenance.mismatches`], the one place that rule lives. This module imports no model and no torch, so the
retrieval package may use it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

# Image processor settings that change the pixels a model sees, hence its embeddings.
PROCESSOR_EMBEDDING_FIELDS = (
    "do_resize",
    "size",
    "resample",
    "do_rescale",
    "rescale_factor",
    "do_normalize",
    "image_mean",
    "image_std",
)
# Where the model's forward settings travel inside the recorded embedding settings; indexes written before it was
# recorded lack it, so it is compared only when both sides have it.
MODEL_CONFIG_KEY = "model_config"


def _json_value(value: Any) -> Any:
    """`value` as plain JSON types (tuples become lists, unknown objects strings), keys sorted."""
    return None if value is None else json.loads(json.dumps(value, sort_keys=True, default=str))


def embedding_settings(image_processor: Any, flip: bool) -> dict[str, Any]:
    """
    What changes an embedding besides the model: `flip` and the image processor's resize/rescale/normalise settings
    (JSON values, `processor_<name>` keys).
    """
    settings: dict[str, Any] = {"flip": bool(flip)}
    if image_processor is not None:
        values = image_processor.to_dict() if hasattr(image_processor, "to_dict") else vars(image_processor)
        for name in PROCESSOR_EMBEDDING_FIELDS:
            value = values.get(name)
            settings[f"processor_{name}"] = int(value) if name == "resample" and value is not None else value
    return _json_value(settings)


def _difference(recorded: Optional[Mapping], given: Optional[Mapping], keys: set[str]) -> str:
    return ", ".join(
        f"{key}: {recorded.get(key)!r} (index) vs {given.get(key)!r} (query)"
        for key in sorted(keys)
        if recorded.get(key) != given.get(key)
    )


@dataclass(frozen=True)
class Provenance:
    """
    How a set of embeddings was made; two equal provenances embed every image to the same vector.

    Attributes:
        model_fingerprint (`str`, *optional*): sha256 of the backbone weights (and of the row heads' bottlenecks
            when they make the embedding) and of the config fields that shape the embedding
            (`hf_lareid.model_fingerprint`).
        model_config (`dict`, *optional*): every config field the model's forward reads (embedding type,
            `lambda_global`, image and patch size, the backbone's depth, width, heads, activation, norm epsilon...).
        embedding (`dict`, *optional*): `flip` and the image processor's settings (see `embedding_settings`).
        runtime (`dict`, *optional*): `runtime`, `bf16`, `device` and `torch` version; these move a vector only
            slightly (bf16 vs fp32: cosine ~0.99998; another runtime: ~1e-7).

    `None` means "not recorded", which is not checked.

    Example:

    ```python
    >>> recorded = Provenance("ab12", {"embedding": "gelt"}, {"flip": False}, {"runtime": "torch"})
    >>> query = Provenance("ab12", {"embedding": "gelt"}, {"flip": True}, {"runtime": "openvino"})
    >>> print(recorded.mismatches(query)["embedding"])
    flip: False (index) vs True (query)
    >>> print(recorded.mismatches(query)["runtime"])
    runtime: 'torch' (index) vs 'openvino' (query)
    ```
    """

    model_fingerprint: Optional[str] = None
    model_config: Optional[Mapping[str, Any]] = None
    embedding: Optional[Mapping[str, Any]] = None
    runtime: Optional[Mapping[str, Any]] = None

    def __post_init__(self) -> None:
        for name in ("model_config", "embedding", "runtime"):
            object.__setattr__(self, name, _json_value(getattr(self, name)))

    def __hash__(self) -> int:
        return hash(self.key())

    def to_dict(self) -> dict[str, Any]:
        """The four fields as one JSON-ready dict."""
        return {
            "model_fingerprint": self.model_fingerprint,
            "model_config": self.model_config,
            "embedding": self.embedding,
            "runtime": self.runtime,
        }

    def key(self) -> str:
        """sha256 (64 hex) of the whole provenance: a cache key for whatever these settings produce."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()

    def model_key(self) -> str:
        """sha256 (64 hex) of the model part only (fingerprint and forward config): what an exported graph depends on."""
        payload = {"model_fingerprint": self.model_fingerprint, "model_config": self.model_config}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def index_fields(self) -> dict[str, Any]:
        """
        The keyword arguments a `GalleryIndex` takes and records (`model_fingerprint`, `embedding_settings`,
        `runtime_settings`): `GalleryIndex(dim, **encoder.provenance.index_fields())`. Its `search` takes the
        provenance itself: `index.search(queries, provenance=encoder.provenance)`.
        """
        embedding = None
        if self.embedding is not None or self.model_config is not None:
            embedding = dict(self.embedding or {})
            if self.model_config is not None:
                embedding[MODEL_CONFIG_KEY] = self.model_config
        return {
            "model_fingerprint": self.model_fingerprint,
            "embedding_settings": embedding,
            "runtime_settings": self.runtime,
        }

    @classmethod
    def from_index_fields(
        cls,
        model_fingerprint: Optional[str] = None,
        embedding_settings: Optional[Mapping[str, Any]] = None,
        runtime_settings: Optional[Mapping[str, Any]] = None,
    ) -> Provenance:
        """The inverse of `index_fields`: the provenance an index recorded (or a search was given)."""
        embedding = None if embedding_settings is None else dict(embedding_settings)
        model_config = None if embedding is None else embedding.pop(MODEL_CONFIG_KEY, None)
        return cls(
            model_fingerprint, model_config, embedding, None if runtime_settings is None else dict(runtime_settings)
        )

    def mismatches(self, other: Provenance) -> dict[str, str]:
        """
        How `other` (a query's provenance) differs from this recorded one, as
        `{"model_fingerprint" | "embedding" | "runtime": "what differs"}`; empty when compatible.

        The rule: a field recorded on one side only is not checked. `model_fingerprint` must be equal; the
        embedding settings (model config, flip, image processor) must be equal key by key (a key on one side only
        differs, except the model config, which older indexes lack); the runtime settings are compared on the keys
        both record. A difference in `model_fingerprint` or `embedding` makes vectors incomparable; one in
        `runtime` moves them slightly (the caller warns).
        """
        found: dict[str, str] = {}
        if self.model_fingerprint is not None and other.model_fingerprint is not None:
            if self.model_fingerprint != other.model_fingerprint:
                found["model_fingerprint"] = (
                    f"{self.model_fingerprint!r} (index) vs {other.model_fingerprint!r} (query)"
                )
        embedding = []
        if self.model_config is not None and other.model_config is not None:
            embedding.append(
                _difference(self.model_config, other.model_config, set(self.model_config) | set(other.model_config))
            )
        if self.embedding is not None and other.embedding is not None:
            embedding.append(_difference(self.embedding, other.embedding, set(self.embedding) | set(other.embedding)))
        if any(embedding):
            found["embedding"] = ", ".join(part for part in embedding if part)
        if self.runtime is not None and other.runtime is not None:
            runtime = _difference(self.runtime, other.runtime, set(self.runtime) & set(other.runtime))
            if runtime:
                found["runtime"] = runtime
        return found


__all__ = ["PROCESSOR_EMBEDDING_FIELDS", "Provenance", "embedding_settings"]
