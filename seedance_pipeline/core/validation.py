"""Request validation against a model's limits, before any paid call.

Pure: the starter runs it before starting a workflow, and the workflow runs it again on the
model the job resolved to (so a fallback model's narrower limits are honoured too). Every
problem names the field and what is allowed, so a user can fix the request in one go.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from seedance_pipeline.core.models import GenerationRequest, Reference, ReferenceKind, ReferenceRole
from seedance_pipeline.core.settings import ModelSpec, Settings

SEED_MAX = 2**32 - 1
EXPIRES_MIN, EXPIRES_MAX = 3600, 259200

_ROLES_BY_KIND = {
    ReferenceKind.IMAGE: {
        ReferenceRole.FIRST_FRAME,
        ReferenceRole.LAST_FRAME,
        ReferenceRole.REFERENCE_IMAGE,
    },
    ReferenceKind.VIDEO: {ReferenceRole.REFERENCE_VIDEO},
    ReferenceKind.AUDIO: {ReferenceRole.REFERENCE_AUDIO},
}
_DEFAULT_ROLE = {
    ReferenceKind.VIDEO: ReferenceRole.REFERENCE_VIDEO,
    ReferenceKind.AUDIO: ReferenceRole.REFERENCE_AUDIO,
}


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class RequestInvalid(ValueError):
    """The request breaks the model's limits; `problems` lists every field at fault."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


def effective_role(ref: Reference, image_count: int) -> ReferenceRole:
    """The role a reference is sent with: explicit, else the provider's default for its kind."""
    if ref.role is not None:
        return ref.role
    if ref.kind == ReferenceKind.IMAGE:
        return ReferenceRole.FIRST_FRAME if image_count == 1 else ReferenceRole.REFERENCE_IMAGE
    return _DEFAULT_ROLE[ref.kind]


def validate_request(
    request: GenerationRequest, settings: Settings, alias: str | None = None
) -> list[FieldProblem]:
    """All problems with `request` for model `alias` (default: the alias a pinned, configured
    `model_id` belongs to, else the request's, else config's)."""
    problems: list[FieldProblem] = []
    pinned = pinned_alias(request, settings)
    if alias is None and pinned is not None and request.model not in (None, pinned):
        problems.append(
            FieldProblem(
                "model_id",
                f"{request.model_id!r} is a {pinned} model ID, but model is {request.model!r}",
            )
        )
    alias = alias or pinned or request.model or settings.default_model
    spec = settings.models.get(alias)
    if spec is None:
        allowed = ", ".join(sorted(settings.models))
        return [FieldProblem("model", f"unknown model {alias!r}; allowed: {allowed}")]
    route = request.route or settings.default_route
    if route not in settings.routes:
        allowed = ", ".join(sorted(settings.routes))
        problems.append(FieldProblem("route", f"unknown route {route!r}; allowed: {allowed}"))
    elif route not in spec.ids:
        allowed = ", ".join(sorted(spec.ids))
        problems.append(
            FieldProblem(
                "route", f"model {alias!r} is not offered on route {route!r}; allowed: {allowed}"
            )
        )
    problems += _check_prompt(request, spec)
    problems += _check_shape(request, spec, alias)
    problems += _check_references(request, spec, alias, settings)
    return problems


def pinned_alias(request: GenerationRequest, settings: Settings) -> str | None:
    """The alias whose limits apply to a pinned `model_id` the config knows (None otherwise):
    validating a pinned ID against another alias's limits sends the provider a body its
    model refuses (1080p to Mini)."""
    if not request.model_id:
        return None
    owner = settings.alias_for_model_id(request.model_id)
    return owner[0] if owner else None


def ensure_valid(request: GenerationRequest, settings: Settings, alias: str | None = None) -> None:
    problems = validate_request(request, settings, alias)
    if problems:
        raise RequestInvalid(problems)


def _check_prompt(request: GenerationRequest, spec: ModelSpec) -> list[FieldProblem]:
    text = request.prompt.strip()
    if not text:
        return [FieldProblem("prompt", "must not be empty")]
    if len(request.prompt) > spec.max_prompt_chars:
        return [
            FieldProblem(
                "prompt", f"{len(request.prompt)} characters; the limit is {spec.max_prompt_chars}"
            )
        ]
    if "\x00" in request.prompt:
        return [FieldProblem("prompt", "contains a NUL character")]
    return []


def _check_shape(request: GenerationRequest, spec: ModelSpec, alias: str) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    auto = spec.auto_duration and request.duration == -1
    if not auto and not spec.duration_min <= request.duration <= spec.duration_max:
        allowed = f"{spec.duration_min}-{spec.duration_max} seconds"
        if spec.auto_duration:
            allowed += " or -1 (model chooses)"
        problems.append(
            FieldProblem(
                "duration", f"{request.duration} is outside {alias}'s range; allowed: {allowed}"
            )
        )
    if request.resolution is not None and request.resolution not in spec.resolutions:
        problems.append(
            FieldProblem(
                "resolution",
                f"{request.resolution!r} is not offered by "
                f"{alias}; allowed: {', '.join(spec.resolutions)}",
            )
        )
    if request.ratio is not None and request.ratio not in spec.ratios:
        problems.append(
            FieldProblem(
                "ratio",
                f"{request.ratio!r} is not offered by {alias}; allowed: {', '.join(spec.ratios)}",
            )
        )
    if not -1 <= request.seed <= SEED_MAX:
        problems.append(FieldProblem("seed", f"{request.seed} outside -1..{SEED_MAX}"))
    if request.service_tier == "flex" and not spec.flex:
        problems.append(
            FieldProblem("service_tier", f"{alias} does not offer the flex tier; allowed: default")
        )
    if request.generate_audio and not spec.audio:
        problems.append(FieldProblem("generate_audio", f"{alias} does not generate audio"))
    if request.camera_fixed is not None and not spec.camera_fixed:
        problems.append(
            FieldProblem(
                "camera_fixed",
                f"{alias} does not accept camera_fixed (1.0/1.5 models only); leave it unset",
            )
        )
    expires = request.execution_expires_after
    if expires is not None and not EXPIRES_MIN <= expires <= EXPIRES_MAX:
        problems.append(
            FieldProblem(
                "execution_expires_after", f"{expires} outside {EXPIRES_MIN}-{EXPIRES_MAX} seconds"
            )
        )
    return problems


def _check_references(
    request: GenerationRequest, spec: ModelSpec, alias: str, settings: Settings
) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    refs = request.references
    images = [r for r in refs if r.kind == ReferenceKind.IMAGE]
    inline = len(request.prompt.encode()) + sum(
        len(r.url) for r in refs if r.url[:5].lower() == "data:"
    )
    limit = settings.references.max_request_body_bytes
    if inline > limit:
        problems.append(
            FieldProblem(
                "references",
                f"inline (base64) references and the prompt make {inline:,} bytes; the "
                f"provider's request body limit is {limit:,} bytes: pass large media by URL",
            )
        )
    roles: list[ReferenceRole] = []
    for i, ref in enumerate(refs):
        field = f"references[{i}]"
        problems += _check_url(ref, field)
        role = effective_role(ref, len(images))
        if role not in _ROLES_BY_KIND[ref.kind]:
            allowed = ", ".join(sorted(r.value for r in _ROLES_BY_KIND[ref.kind]))
            problems.append(
                FieldProblem(
                    f"{field}.role",
                    f"{role.value!r} is not a role for a {ref.kind.value}; allowed: {allowed}",
                )
            )
        roles.append(role)
    frame_roles = [r for r in roles if r in (ReferenceRole.FIRST_FRAME, ReferenceRole.LAST_FRAME)]
    ref_roles = [r for r in roles if r not in frame_roles]
    if frame_roles and ref_roles:
        problems.append(
            FieldProblem(
                "references",
                "first/last-frame mode cannot be mixed with reference_image/video/audio mode",
            )
        )
    if frame_roles:
        if frame_roles.count(ReferenceRole.FIRST_FRAME) > 1:
            problems.append(FieldProblem("references", "at most one first_frame image"))
        if frame_roles.count(ReferenceRole.LAST_FRAME) > 1:
            problems.append(FieldProblem("references", "at most one last_frame image"))
        if ReferenceRole.LAST_FRAME in frame_roles:
            if ReferenceRole.FIRST_FRAME not in frame_roles:
                problems.append(
                    FieldProblem("references", "a last_frame image needs a first_frame image")
                )
            if not spec.first_last_frame:
                problems.append(FieldProblem("references", f"{alias} has no first+last-frame mode"))
    if ref_roles:
        counts = {
            "reference_image": (
                ref_roles.count(ReferenceRole.REFERENCE_IMAGE),
                spec.max_reference_images,
            ),
            "reference_video": (
                ref_roles.count(ReferenceRole.REFERENCE_VIDEO),
                spec.max_reference_videos,
            ),
            "reference_audio": (
                ref_roles.count(ReferenceRole.REFERENCE_AUDIO),
                spec.max_reference_audios,
            ),
        }
        for name, (count, limit) in counts.items():
            if count > limit:
                problems.append(
                    FieldProblem(
                        "references", f"{count} {name} items; {alias} allows at most {limit}"
                    )
                )
        if len(ref_roles) > spec.max_references_total:
            problems.append(
                FieldProblem(
                    "references",
                    f"{len(ref_roles)} references; {alias} "
                    f"allows at most {spec.max_references_total} in all",
                )
            )
        if counts["reference_audio"][0] and not (
            counts["reference_image"][0] or counts["reference_video"][0]
        ):
            problems.append(
                FieldProblem(
                    "references", "audio cannot be the only reference: add an image or a video"
                )
            )
    return problems


def _check_url(ref: Reference, field: str) -> list[FieldProblem]:
    url = ref.url.strip()
    if not url:
        return [FieldProblem(f"{field}.url", "must not be empty")]
    if len(url) > 8192 and not url.startswith("data:"):
        return [FieldProblem(f"{field}.url", "longer than 8192 characters")]
    scheme = urlsplit(url).scheme.lower()
    if scheme == "data":
        if ref.kind == ReferenceKind.VIDEO:
            return [
                FieldProblem(
                    f"{field}.url",
                    "a video reference must be an http(s) or asset:// URL "
                    "(base64 is accepted for images and audio only)",
                )
            ]
        prefix = f"data:{ref.kind.value}/"
        if not url.startswith(prefix) or ";base64," not in url:
            return [
                FieldProblem(
                    f"{field}.url",
                    f"data URLs must look like {prefix}<format>;base64,...",
                )
            ]
        return []
    if scheme == "asset":
        return []
    if scheme not in ("http", "https"):
        return [
            FieldProblem(
                f"{field}.url",
                f"scheme {scheme or '(none)'!r} is not allowed; "
                "allowed: https, http, asset, data (images)",
            )
        ]
    if not urlsplit(url).hostname:
        return [FieldProblem(f"{field}.url", "has no host")]
    return []
