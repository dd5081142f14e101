"""Per-model validation of a create-task body, answering like the provider.

The real service validates the JSON fields strictly (reference sections 3 and
15) and integrators report that sending a field a model does not support is a
400. This module turns a raw body into a :class:`GenerationRequest` with every
default resolved, or raises :class:`~emulator.errors.ApiError` carrying the
provider's ``MissingParameter``/``InvalidParameter`` code and the ``param`` at
fault. Checks run in a fixed order so the same bad body always gets the same
answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from seedance_pipeline.emulator.catalog import Catalog, Mode, ModelSpec
from seedance_pipeline.emulator.errors import ApiError, because, invalid, missing
from seedance_pipeline.emulator.imagesize import closest_ratio, data_url_size, decode_data_url

ALL_RESOLUTIONS = ("480p", "720p", "1080p", "4k")
ALL_RATIOS = ("16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive")
CONCRETE_RATIOS = [r for r in ALL_RATIOS if r != "adaptive"]
SERVICE_TIERS = ("default", "flex")
FPS = 24
SEED_MAX = 2**32 - 1
EXPIRES_MIN, EXPIRES_MAX, EXPIRES_DEFAULT = 3600, 259200, 172800
FRAMES_MIN, FRAMES_MAX = 29, 289
IMAGE_FORMATS = ("jpeg", "jpg", "png", "webp", "bmp", "tiff", "gif", "heic", "heif")
AUDIO_FORMATS = ("wav", "mp3", "mpeg", "x-wav")
IMAGE_ROLES = ("first_frame", "last_frame", "reference_image")
MEDIA_TYPES = {"image_url": "image", "video_url": "video", "audio_url": "audio"}

MODE_NAMES: dict[str, str] = {
    "t2v": "text-to-video",
    "first_frame": "first-frame image-to-video",
    "first_last_frame": "first-and-last-frame image-to-video",
    "reference": "reference (multimodal) generation",
}

# Legacy text commands (reference section 3.4): flag -> request field.
TEXT_FLAGS: dict[str, str] = {
    "resolution": "resolution",
    "rs": "resolution",
    "ratio": "ratio",
    "rt": "ratio",
    "duration": "duration",
    "dur": "duration",
    "frames": "frames",
    "framespersecond": "fps",
    "fps": "fps",
    "seed": "seed",
    "camerafixed": "camera_fixed",
    "cf": "camera_fixed",
    "watermark": "watermark",
    "wm": "watermark",
}
_FLAG_RE = re.compile(r"(?:^|\s)--([A-Za-z]+)\s+(\S+)")
_INT_FLAG_FIELDS = {"duration", "frames", "seed", "fps"}
_BOOL_FLAG_FIELDS = {"camera_fixed", "watermark"}


@dataclass(frozen=True)
class DraftSource:
    """What validation needs to know about a task named by a ``draft_task`` item."""

    task_id: str
    family: str
    is_draft: bool
    succeeded: bool
    mode: Mode
    ratio: str
    duration: int | None
    frames: int | None
    seed: int


@dataclass(frozen=True)
class GenerationRequest:
    """A validated create request with every default filled in."""

    model_id: str
    spec: ModelSpec
    mode: Mode
    prompt: str
    resolution: str
    requested_ratio: str
    ratio: str
    width: int
    height: int
    duration: int | None
    frames: int | None
    output_frames: int
    seed: int
    service_tier: str
    execution_expires_after: int
    generate_audio: bool | None
    draft: bool
    priority: int
    safety_identifier: str | None
    return_last_frame: bool
    callback_url: str | None
    watermark: bool
    camera_fixed: bool | None
    draft_task_id: str | None
    reference_urls: tuple[str, ...] = ()
    text_flags: dict[str, str] = field(default_factory=dict)

    def billable_frames(self, plus_one_frame: bool) -> int:
        """Frames used by the token formula (24 x duration, or 24 x d + 1, or ``frames``)."""
        if self.frames is not None:
            return self.frames
        assert self.duration is not None
        return FPS * self.duration + (1 if plus_one_frame else 0)

    def tokens(self, plus_one_frame: bool) -> int:
        """``W x H x frames / 1024`` rounded down (reference section 11.1)."""
        return self.width * self.height * self.billable_frames(plus_one_frame) // 1024


DraftLookup = Callable[[str], DraftSource | None]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _absent(body: Mapping[str, Any], name: str) -> bool:
    # The SDKs strip None/NOT_GIVEN, so an explicit null counts as "not sent".
    return body.get(name) is None


def _get_bool(body: Mapping[str, Any], name: str) -> bool | None:
    if _absent(body, name):
        return None
    value = body[name]
    if not isinstance(value, bool):
        raise invalid(name, f"the parameter `{name}` must be a boolean")
    return value


def _get_int(body: Mapping[str, Any], name: str) -> int | None:
    if _absent(body, name):
        return None
    value = body[name]
    if not _is_int(value):
        raise invalid(name, f"the parameter `{name}` must be an integer")
    return int(value)


def _get_str(body: Mapping[str, Any], name: str) -> str | None:
    if _absent(body, name):
        return None
    value = body[name]
    if not isinstance(value, str):
        raise invalid(name, f"the parameter `{name}` must be a string")
    return value


def _check_http_url(url: str) -> bool:
    return re.match(r"^https?://[^/\s]+", url) is not None


@dataclass
class _Content:
    """Content items sorted by kind, remembering each one's index for messages."""

    texts: list[tuple[int, str]] = field(default_factory=list)
    images: list[tuple[int, str, str | None]] = field(default_factory=list)
    videos: list[tuple[int, str]] = field(default_factory=list)
    audios: list[tuple[int, str]] = field(default_factory=list)
    drafts: list[tuple[int, str]] = field(default_factory=list)

    def media_urls(self) -> tuple[str, ...]:
        return tuple(
            [u for _, u, _ in self.images]
            + [u for _, u in self.videos]
            + [u for _, u in self.audios]
        )


def _media_url(item: Mapping[str, Any], i: int, kind: str) -> str:
    key = f"{kind}_url"
    obj = item.get(key)
    if obj is None:
        raise missing(f"content[{i}].{key}")
    if not isinstance(obj, dict):
        raise invalid(f"content[{i}].{key}", f"`content[{i}].{key}` must be an object")
    url = obj.get("url")
    if url is None or url == "":
        raise missing(f"content[{i}].{key}.url")
    if not isinstance(url, str):
        raise invalid(f"content[{i}].{key}.url", f"`content[{i}].{key}.url` must be a string")
    return url


def _check_image_url(url: str, i: int) -> None:
    param = f"content[{i}].image_url.url"
    if url.startswith("data:"):
        m = re.match(r"^data:image/([a-z]+);base64,", url)
        if m is None or m.group(1) not in IMAGE_FORMATS:
            raise invalid(
                param,
                f"the input image 'content[{i}]' must be an http(s) URL, an asset:// ID or "
                "data:image/<jpeg|png|webp|bmp|tiff|gif>;base64,<data>",
            )
        if decode_data_url(url) is None:
            raise invalid(param, f"the input image 'content[{i}]' is not valid base64")
        size = data_url_size(url)
        if size is not None:
            w, h = size
            if not (300 < w < 6000 and 300 < h < 6000):
                raise invalid(
                    param,
                    f"the input image 'content[{i}]' is {w}x{h}; each side must be "
                    "between 300 and 6000 px",
                )
            if not (0.4 < w / h < 2.5):
                raise invalid(
                    param,
                    f"the input image 'content[{i}]' has aspect ratio {w / h:.2f}; "
                    "it must be between 0.4 and 2.5",
                )
    elif not (url.startswith("asset://") or _check_http_url(url)):
        raise invalid(param, f"the input image 'content[{i}]' has an unsupported URL")


def _check_video_url(url: str, i: int) -> None:
    param = f"content[{i}].video_url.url"
    if url.startswith("data:"):
        raise invalid(param, "reference_video must be provided as a web url")
    if not (url.startswith("asset://") or _check_http_url(url)):
        raise invalid(param, f"the input video 'content[{i}]' has an unsupported URL")


def _check_audio_url(url: str, i: int) -> None:
    param = f"content[{i}].audio_url.url"
    if url.startswith("data:"):
        m = re.match(r"^data:audio/([a-z0-9-]+);base64,", url)
        if m is None or m.group(1) not in AUDIO_FORMATS:
            raise invalid(param, f"the input audio 'content[{i}]' must be wav or mp3")
        return
    if not (url.startswith("asset://") or _check_http_url(url)):
        raise invalid(param, f"the input audio 'content[{i}]' has an unsupported URL")


def _parse_content(body: Mapping[str, Any]) -> _Content:
    if "content" not in body or body["content"] is None:
        raise missing("content")
    items = body["content"]
    if not isinstance(items, list):
        raise invalid("content", "the parameter `content` must be an array")
    if not items:
        raise invalid("content", "the parameter `content` must not be empty")
    parsed = _Content()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"content[{i}]", f"`content[{i}]` must be an object")
        kind = item.get("type")
        if kind is None:
            raise missing(f"content[{i}].type")
        role = item.get("role")
        if role is not None and not isinstance(role, str):
            raise invalid(f"content[{i}].role", f"`content[{i}].role` must be a string")
        if kind == "text":
            text = item.get("text")
            if text is None:
                raise missing(f"content[{i}].text")
            if not isinstance(text, str):
                raise invalid(f"content[{i}].text", f"`content[{i}].text` must be a string")
            parsed.texts.append((i, text))
        elif kind == "image_url":
            url = _media_url(item, i, "image")
            _check_image_url(url, i)
            if role is not None and role not in IMAGE_ROLES:
                raise invalid(
                    f"content[{i}].role",
                    f"the role '{role}' is not valid for an image; use one of "
                    f"{', '.join(IMAGE_ROLES)}",
                )
            parsed.images.append((i, url, role))
        elif kind == "video_url":
            url = _media_url(item, i, "video")
            _check_video_url(url, i)
            if role not in (None, "reference_video"):
                raise invalid(f"content[{i}].role", f"the role '{role}' is not valid for a video")
            parsed.videos.append((i, url))
        elif kind == "audio_url":
            url = _media_url(item, i, "audio")
            _check_audio_url(url, i)
            if role not in (None, "reference_audio"):
                raise invalid(f"content[{i}].role", f"the role '{role}' is not valid for an audio")
            parsed.audios.append((i, url))
        elif kind == "draft_task":
            obj = item.get("draft_task")
            ref = obj.get("id") if isinstance(obj, dict) else None
            if not isinstance(ref, str) or not ref:
                raise missing(f"content[{i}].draft_task.id")
            parsed.drafts.append((i, ref))
        else:
            raise invalid(
                f"content[{i}].type",
                f"the content type '{kind}' is not supported; use text, image_url, "
                "video_url, audio_url or draft_task",
            )
    return parsed


def _decide_mode(c: _Content, spec: ModelSpec, model_id: str) -> Mode:
    ref_images = [i for i, _, r in c.images if r == "reference_image"]
    first = [i for i, _, r in c.images if r == "first_frame"]
    last = [i for i, _, r in c.images if r == "last_frame"]
    no_role = [i for i, _, r in c.images if r is None]
    mode: Mode
    if ref_images or c.videos or c.audios:
        if first or last:
            raise invalid(
                "content",
                "reference images, videos or audios cannot be combined with "
                "first_frame/last_frame images",
            )
        if no_role:
            raise invalid(
                f"content[{no_role[0]}].role",
                "every image needs role 'reference_image' in reference mode",
            )
        mode = "reference"
    elif len(c.images) == 1:
        i, _, role = c.images[0]
        if role == "last_frame":
            raise invalid(f"content[{i}].role", "a last_frame image needs a first_frame image")
        mode = "first_frame"
    elif len(c.images) == 2:
        roles = [r for _, _, r in c.images]
        if sorted(r or "" for r in roles) != ["first_frame", "last_frame"]:
            bad = next(i for i, _, r in c.images if r is None or roles.count(r) > 1)
            raise invalid(
                f"content[{bad}].role",
                "two images need the roles first_frame and last_frame (role is required)",
            )
        mode = "first_last_frame"
    elif len(c.images) > 2:
        raise invalid(
            "content",
            f"{len(c.images)} images were sent without role 'reference_image'; "
            "at most a first_frame and a last_frame image are allowed",
        )
    else:
        mode = "t2v"
    if mode not in spec.modes:
        raise invalid("content", f"the model {model_id} does not support {MODE_NAMES[mode]}")
    if mode == "reference":
        lim = spec.reference_limits
        n_img, n_vid, n_aud = len(ref_images), len(c.videos), len(c.audios)
        if n_vid > lim.videos:
            raise invalid(
                "content",
                f"{n_vid} reference videos were sent; the model {model_id} accepts at most "
                f"{lim.videos}",
            )
        if n_aud > lim.audios:
            raise invalid(
                "content",
                f"{n_aud} reference audios were sent; the model {model_id} accepts at most "
                f"{lim.audios}",
            )
        if n_img > lim.images or n_img < lim.min_images:
            raise invalid(
                "content",
                f"{n_img} reference images were sent; the model {model_id} accepts "
                f"{lim.min_images} to {lim.images}",
            )
        if n_img + n_vid + n_aud > lim.total:
            raise invalid(
                "content",
                f"{n_img + n_vid + n_aud} reference files were sent; at most {lim.total} "
                "are allowed",
            )
        if n_aud and not (n_img or n_vid):
            raise invalid(
                "content",
                "audio cannot be the only reference; add at least one reference image or video",
            )
    if mode == "t2v" and not c.texts:
        raise missing("content", "a text prompt is required for text-to-video")
    return mode


def _parse_flags(text: str) -> dict[str, str]:
    """Legacy ``--flag value`` commands in a prompt, keyed by request field."""
    found: dict[str, str] = {}
    for name, value in _FLAG_RE.findall(text):
        target = TEXT_FLAGS.get(name.lower())
        if target is not None:
            found[target] = value
    return found


def _flag_values(flags: Mapping[str, str]) -> dict[str, Any]:
    """Convert flag strings to JSON-like values, rejecting malformed ones."""
    out: dict[str, Any] = {}
    for name, raw in flags.items():
        if name in _INT_FLAG_FIELDS:
            try:
                out[name] = int(raw)
            except ValueError:
                raise invalid(
                    name, f"the text command for `{name}` has a non-integer value '{raw}'"
                ) from None
        elif name in _BOOL_FLAG_FIELDS:
            if raw.lower() not in ("true", "false"):
                raise invalid(
                    name, f"the text command for `{name}` must be true or false, got '{raw}'"
                )
            out[name] = raw.lower() == "true"
        else:
            out[name] = raw
    return out


def _resolve_model(
    body: Mapping[str, Any], catalog: Catalog, endpoints: Mapping[str, str]
) -> tuple[str, ModelSpec]:
    if _absent(body, "model"):
        raise missing("model")
    model = body["model"]
    if not isinstance(model, str):
        raise invalid("model", "the parameter `model` must be a string")
    resolved = endpoints.get(model, model)
    spec = catalog.get(resolved)
    if spec is None:
        raise ApiError(
            404,
            "InvalidEndpointOrModel.NotFound",
            because(
                f"the model or endpoint {model} does not exist or you do not have access to it"
            ),
            param="model",
        )
    return resolved, spec


def validate_create(
    body: Any,
    catalog: Catalog,
    *,
    endpoints: Mapping[str, str] | None = None,
    draft_lookup: DraftLookup | None = None,
) -> GenerationRequest:
    """Validate a create body for its model; raise ApiError like the provider would."""
    if not isinstance(body, dict):
        raise invalid("body", "the request body must be a JSON object")
    model_id, spec = _resolve_model(body, catalog, endpoints or {})
    content = _parse_content(body)

    draft_source: DraftSource | None = None
    if content.drafts:
        draft_source = _check_draft(content, spec, model_id, draft_lookup)
        mode: Mode = draft_source.mode
    else:
        mode = _decide_mode(content, spec, model_id)

    flags: dict[str, str] = {}
    fields: dict[str, Any] = dict(body)
    fps: Any = None
    if spec.text_flags and content.texts:
        flags = _parse_flags(content.texts[-1][1])
        values = _flag_values(flags)
        fps = values.pop("fps", None)
        for name, value in values.items():
            # JSON fields win over text commands when both are present (assumption).
            if _absent(fields, name):
                fields[name] = value
    if fps is not None and fps != FPS:
        raise invalid("framespersecond", f"Seedance only supports {FPS} fps, got {fps}")

    draft = _get_bool(fields, "draft") or False
    if draft and not spec.draft:
        raise invalid("draft", f"the model {model_id} does not support draft mode")
    if draft and draft_source is not None:
        raise invalid("draft", "a draft_task item cannot itself be a draft")

    resolution = _get_str(fields, "resolution")
    if resolution is not None:
        if resolution not in ALL_RESOLUTIONS:
            raise invalid(
                "resolution",
                f"the resolution '{resolution}' is not one of {', '.join(ALL_RESOLUTIONS)}",
            )
        if resolution not in spec.resolutions:
            raise invalid(
                "resolution",
                f"the model {model_id} does not support resolution {resolution}; "
                f"supported: {', '.join(spec.resolutions)}",
            )
        if draft and resolution != "480p":
            raise invalid("resolution", "draft mode only supports 480p")
    else:
        resolution = "480p" if draft else spec.default_resolution

    requested_ratio = _get_str(fields, "ratio")
    if requested_ratio is not None:
        if requested_ratio not in ALL_RATIOS:
            raise invalid(
                "ratio", f"the ratio '{requested_ratio}' is not one of {', '.join(ALL_RATIOS)}"
            )
        if requested_ratio not in spec.ratios:
            raise invalid("ratio", f"the model {model_id} does not support ratio {requested_ratio}")
        if mode == "first_frame" and not spec.ratio_with_first_frame:
            raise invalid(
                "ratio",
                "ratio cannot be set in first-frame mode for this model; the output follows "
                "the image",
                code="InvalidParameter.TaskTypeConstraint",
            )

    duration = _get_int(fields, "duration")
    if duration is not None:
        d = spec.duration
        if duration == -1 and not d.auto:
            raise invalid("duration", f"the model {model_id} does not support duration -1")
        if duration != -1 and not (d.min <= duration <= d.max):
            allowed = f"{d.min} to {d.max}" + (" or -1" if d.auto else "")
            raise invalid(
                "duration", f"the duration {duration} is out of range; allowed: {allowed}"
            )

    frames = _get_int(fields, "frames")
    if frames is not None:
        if not spec.frames:
            raise invalid("frames", f"the model {model_id} does not support `frames`")
        if not (FRAMES_MIN <= frames <= FRAMES_MAX) or (frames - 25) % 4 != 0:
            raise invalid(
                "frames",
                f"the frames value {frames} is invalid; it must be 25+4n within "
                f"[{FRAMES_MIN}, {FRAMES_MAX}]",
            )

    seed = _get_int(fields, "seed")
    if seed is not None and not (-1 <= seed <= SEED_MAX):
        raise invalid("seed", f"the seed {seed} is out of range [-1, {SEED_MAX}]")

    camera_fixed = _get_bool(fields, "camera_fixed")
    if camera_fixed is not None and not spec.camera_fixed:
        raise invalid("camera_fixed", f"the model {model_id} does not support `camera_fixed`")
    watermark = _get_bool(fields, "watermark") or False
    return_last_frame = _get_bool(fields, "return_last_frame") or False

    generate_audio = _get_bool(fields, "generate_audio")
    if generate_audio and not spec.audio.supported:
        raise invalid("generate_audio", f"the model {model_id} cannot generate audio")
    if spec.audio.supported:
        generate_audio = spec.audio.default if generate_audio is None else generate_audio
    else:
        generate_audio = None

    service_tier = _get_str(fields, "service_tier") or "default"
    if service_tier not in SERVICE_TIERS:
        raise invalid("service_tier", f"the service_tier '{service_tier}' is not default or flex")
    if service_tier == "flex" and not spec.flex:
        raise invalid("service_tier", f"the model {model_id} does not offer the flex tier")

    expires = _get_int(fields, "execution_expires_after")
    if expires is not None and not (EXPIRES_MIN <= expires <= EXPIRES_MAX):
        raise invalid(
            "execution_expires_after",
            f"execution_expires_after {expires} is out of range [{EXPIRES_MIN}, {EXPIRES_MAX}]",
        )

    priority = _get_int(fields, "priority") or 0
    safety_identifier = _get_str(fields, "safety_identifier")
    callback_url = _get_str(fields, "callback_url")
    if callback_url is not None and not _check_http_url(callback_url):
        raise invalid("callback_url", "the callback_url must be an http(s) URL")
    tools = fields.get("tools")
    if tools is not None and not (
        isinstance(tools, list)
        and all(isinstance(t, dict) and isinstance(t.get("type"), str) for t in tools)
    ):
        raise invalid("tools", "`tools` must be an array of objects with a string `type`")

    # Resolve ratio, duration and pixel size.
    if draft_source is not None:
        ratio = draft_source.ratio
        if requested_ratio is None:
            requested_ratio = draft_source.ratio
        if duration is None and frames is None:
            duration, frames = draft_source.duration, draft_source.frames
        if seed is None:
            seed = draft_source.seed
    else:
        if requested_ratio is None:
            requested_ratio = spec.default_ratio[mode]
        ratio = _resolve_ratio(requested_ratio, content)
    if frames is not None:
        duration = None
        output_frames = frames
    else:
        if duration is None:
            duration = spec.duration.default
        if duration == -1:
            duration = spec.duration.chosen("\n".join(t for _, t in content.texts))
        output_frames = FPS * duration + 1
    width, height = catalog.pixels(spec, resolution, ratio)

    prompt = "\n".join(t for _, t in content.texts)
    return GenerationRequest(
        model_id=model_id,
        spec=spec,
        mode=mode,
        prompt=prompt,
        resolution=resolution,
        requested_ratio=requested_ratio,
        ratio=ratio,
        width=width,
        height=height,
        duration=duration,
        frames=frames,
        output_frames=output_frames,
        seed=-1 if seed is None else seed,
        service_tier=service_tier,
        execution_expires_after=EXPIRES_DEFAULT if expires is None else expires,
        generate_audio=generate_audio,
        draft=draft,
        priority=priority,
        safety_identifier=safety_identifier,
        return_last_frame=return_last_frame,
        callback_url=callback_url,
        watermark=watermark,
        camera_fixed=camera_fixed,
        draft_task_id=draft_source.task_id if draft_source else None,
        reference_urls=content.media_urls(),
        text_flags=flags,
    )


def _resolve_ratio(requested: str, content: _Content) -> str:
    """A concrete ratio: as asked, or for ``adaptive`` the first image's nearest ratio.

    Remote images are never fetched, so ``adaptive`` with a URL image (or with no
    image at all) resolves to 16:9 (assumption, see README).
    """
    if requested != "adaptive":
        return requested
    for _, url, _ in content.images:
        size = data_url_size(url)
        if size is not None:
            return closest_ratio(size[0], size[1], CONCRETE_RATIOS)
        break
    return "16:9"


def _check_draft(
    c: _Content, spec: ModelSpec, model_id: str, lookup: DraftLookup | None
) -> DraftSource:
    i, ref = c.drafts[0]
    if len(c.drafts) > 1:
        raise invalid("content", "only one draft_task item is allowed")
    if c.texts or c.images or c.videos or c.audios:
        raise invalid("content", "a draft_task item cannot be combined with text or media items")
    if not spec.draft:
        raise invalid("content", f"the model {model_id} does not support draft_task")
    source = lookup(ref) if lookup else None
    param = f"content[{i}].draft_task.id"
    if source is None:
        raise invalid(param, f"the draft task {ref} does not exist")
    if not source.is_draft or not source.succeeded:
        raise invalid(param, f"the task {ref} is not a succeeded draft task")
    if source.family != spec.family:
        raise invalid(param, f"the draft task {ref} was made by a different model")
    return source
