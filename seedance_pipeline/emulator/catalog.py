"""Model catalogue: which model IDs exist and what each one accepts.

The data lives in ``catalog.json`` next to this module so that adding a model or
correcting a capability is a data change, not a code change; no model ID appears
in Python code. Both the BytePlus and the Volcengine ID of a family map to the
same capability record, and the ID the caller used is the one echoed back.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

Mode = Literal["t2v", "first_frame", "first_last_frame", "reference"]

CATALOG_PATH = Path(__file__).with_name("catalog.json")


class DurationSpec(BaseModel):
    """Accepted ``duration`` range; ``auto`` means ``-1`` (model chooses) is allowed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int
    max: int
    auto: bool
    default: int

    def chosen(self, prompt: str) -> int:
        """The length a model picks for `duration: -1`: whole seconds within its range
        (reference section 0, C5), the same for the same prompt, as a model's choice would
        be for the same content."""
        spread = self.max - self.min + 1
        digest = hashlib.sha256(prompt.encode()).digest()
        return self.min + int.from_bytes(digest[:4], "big") % spread


class ReferenceLimits(BaseModel):
    """Counts allowed in reference mode (multimodal on 2.x, images only on 1.0 Lite-i2v)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_images: int
    images: int
    videos: int
    audios: int
    total: int


class AudioSpec(BaseModel):
    """Whether ``generate_audio`` is meaningful and what it defaults to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    supported: bool
    default: bool


class ModelIds(BaseModel):
    """The two regional IDs of one model family (Volcengine may be unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    byteplus: str | None
    volcengine: str | None


class ModelSpec(BaseModel):
    """Capabilities of one model family, as validated by the emulator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    family: str
    ids: ModelIds
    pixel_table: str
    modes: tuple[Mode, ...]
    resolutions: tuple[str, ...]
    default_resolution: str
    duration: DurationSpec
    frames: bool
    ratios: tuple[str, ...]
    default_ratio: dict[Mode, str]
    reference_limits: ReferenceLimits
    audio: AudioSpec
    draft: bool
    flex: bool
    camera_fixed: bool
    text_flags: bool
    ratio_with_first_frame: bool

    def all_ids(self) -> list[str]:
        """Every model ID (both regions) that selects this family."""
        return [i for i in (self.ids.byteplus, self.ids.volcengine) if i]


class CatalogFile(BaseModel):
    """Schema of ``catalog.json``; validated at load so typos fail loudly."""

    model_config = ConfigDict(extra="ignore")

    pixel_tables: dict[str, dict[str, dict[str, tuple[int, int]]]]
    models: list[ModelSpec]


class Catalog:
    """Lookup of model IDs to capabilities and of (resolution, ratio) to pixel sizes."""

    def __init__(self, data: CatalogFile) -> None:
        self._data = data
        self._by_id: dict[str, ModelSpec] = {}
        for spec in data.models:
            table = data.pixel_tables.get(spec.pixel_table)
            if table is None:
                raise ValueError(f"{spec.family}: unknown pixel table {spec.pixel_table!r}")
            for res in spec.resolutions:
                missing = [
                    r for r in spec.ratios if r != "adaptive" and r not in table.get(res, {})
                ]
                if missing:
                    raise ValueError(f"{spec.family}: no pixel size for {res} {missing}")
            for model_id in spec.all_ids():
                if model_id in self._by_id:
                    raise ValueError(f"duplicate model id {model_id!r} in catalogue")
                self._by_id[model_id] = spec

    @classmethod
    def load(cls, path: Path = CATALOG_PATH) -> Catalog:
        """Read and validate a catalogue file."""
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(CatalogFile.model_validate(raw))

    def get(self, model_id: str) -> ModelSpec | None:
        """Capabilities for a model ID, or None when the ID is unknown."""
        return self._by_id.get(model_id)

    def model_ids(self) -> list[str]:
        """All known model IDs, in catalogue order."""
        return list(self._by_id)

    def pixels(self, spec: ModelSpec, resolution: str, ratio: str) -> tuple[int, int]:
        """Output width and height for a resolution and a concrete (non-adaptive) ratio."""
        width, height = self._data.pixel_tables[spec.pixel_table][resolution][ratio]
        return width, height


@cache
def default_catalog() -> Catalog:
    """The packaged catalogue, loaded once per process (it is immutable)."""
    return Catalog.load()
