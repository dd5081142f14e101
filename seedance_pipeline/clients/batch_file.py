"""Batch files: JSONL or CSV, one request per row, same fields as `starter.py generate`.

Every row is parsed and validated before anything starts; all bad rows are reported by line
number at once. Optional per-row `job_id` and `candidates` (N jobs of the same request).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from seedance_pipeline.core.models import JOB_ID_PATTERN, GenerationRequest, Reference
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.validation import validate_request

ROLES = {"first_frame", "last_frame", "reference_image", "reference_video", "reference_audio"}


@dataclass(frozen=True)
class BatchRow:
    line: int
    request: GenerationRequest
    job_id: str | None
    candidates: int


@dataclass(frozen=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_media(spec: str, kind: str = "image") -> Reference:
    """`URL` or `URL:ROLE`. After a URL, a word behind the last colon is a role and must be
    one: `x.png:fist_frame` is refused, not sent as part of the URL. (A port is digits, and a
    path holds a slash, so neither reads as a role; a URL that really ends in `:word` spells
    its role out: `URL:word:first_frame`.)"""
    spec = spec.strip()
    url, colon, suffix = spec.rpartition(":")
    is_url = "://" in url or url.startswith("data:")
    if not (colon and is_url and _WORD.fullmatch(suffix)):
        return Reference(kind=kind, url=spec)
    if suffix not in ROLES:
        raise ValueError(
            f"{spec!r}: unknown role {suffix!r}; roles: {', '.join(sorted(ROLES))} "
            f"(a URL ending in ':{suffix}' needs its role spelt out: URL:first_frame)"
        )
    return Reference(kind=kind, url=url, role=suffix)


def request_from_fields(fields: dict[str, Any]) -> tuple[GenerationRequest, str | None, int]:
    # Empty CSV cells mean "not given", except the prompt: an empty prompt is an error to
    # report with the row's other problems, not a missing field.
    data = {k: v for k, v in fields.items() if v is not None and (v != "" or k == "prompt")}
    job_id = data.pop("job_id", None)
    candidates = int(data.pop("candidates", 1))
    refs: list[Reference] = []
    for key, kind in (
        ("images", "image"),
        ("image", "image"),
        ("videos", "video"),
        ("video", "video"),
        ("audios", "audio"),
        ("audio", "audio"),
    ):
        value = data.pop(key, None)
        if value is None:
            continue
        items = value if isinstance(value, list) else str(value).split(";")
        refs += [parse_media(str(i).strip(), kind) for i in items if str(i).strip()]
    if "references" in data:
        refs += [Reference.model_validate(r) for r in data.pop("references")]
    if "last_frame" in data:
        data["return_last_frame"] = data.pop("last_frame")
    for flag in ("return_last_frame", "watermark", "generate_audio", "camera_fixed"):
        if isinstance(data.get(flag), str):
            data[flag] = data[flag].strip().lower() in ("1", "true", "yes", "y")
    for number in ("duration", "seed", "execution_expires_after"):
        if isinstance(data.get(number), str):
            data[number] = int(data[number])
    request = GenerationRequest(**data, references=tuple(refs))
    if candidates < 1 or candidates > 100:
        raise ValueError("candidates must be between 1 and 100")
    return request, (str(job_id) if job_id is not None else None), candidates


def read_batch(path: Path, settings: Settings) -> tuple[list[BatchRow], list[RowProblem]]:
    rows: list[BatchRow] = []
    problems: list[RowProblem] = []
    for line, fields in _records(path, problems):
        try:
            request, job_id, candidates = request_from_fields(fields)
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or "row"
                problems.append(RowProblem(line, f"{where}: {err['msg']}"))
            continue
        except (ValueError, TypeError) as exc:
            problems.append(RowProblem(line, str(exc)))
            continue
        for problem in validate_request(request, settings):
            problems.append(RowProblem(line, str(problem)))
        if job_id is not None and candidates > 1:
            problems.append(RowProblem(line, "job_id and candidates > 1 cannot be combined"))
        if job_id is not None and not JOB_ID_PATTERN.fullmatch(job_id):
            problems.append(
                RowProblem(
                    line,
                    f"job_id {job_id!r}: 1-128 characters of letters, digits and . _ : -, "
                    "starting with a letter or digit",
                )
            )
        rows.append(BatchRow(line, request, job_id, candidates))
    return rows, problems


def _records(path: Path, problems: list[RowProblem]) -> list[tuple[int, dict[str, Any]]]:
    text = path.read_text(encoding="utf-8")
    out: list[tuple[int, dict[str, Any]]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        for index, row in enumerate(reader, start=2):
            out.append((index, {k.strip(): v for k, v in row.items() if k}))
        return out
    for index, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(index, f"not valid JSON: {exc.msg}"))
            continue
        if not isinstance(value, dict):
            problems.append(RowProblem(index, "each line must be a JSON object"))
            continue
        out.append((index, value))
    return out


@dataclass(frozen=True)
class BatchPlan:
    """How a batch's jobs meet the capacity gate: one fairness key, one priority."""

    file: Path
    key: str
    priority: int


def batch_key(file: Path) -> str:
    """The batch's fairness key (and `Batch` search attribute): the file's name and a digest
    of its absolute path, so a rerun of the same file is the same batch and two files with one
    name are not."""
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:8]
    stem = "".join(c if c.isalnum() or c in "-_." else "-" for c in file.stem)[:40]
    return f"{stem}-{digest}"
