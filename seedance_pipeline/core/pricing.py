"""Token estimates and costs. Prices come from settings; only the provider's pixel tables and
the token formula (reference sections 11, 13 and 0) live here, because they are facts of how
the provider counts, not commercial terms.

The bill is whatever `usage.completion_tokens` says; the formula is the pre-submission
estimate shown to the user, held against budgets and recorded beside the billed figure.
`estimate()` is the one place a request becomes tokens, a unit price and a cost: the CLI shows
it, `resolve_model` records it on the `ResolvedModel`, and the ledger prices the billed tokens
with the same `unit_price` through `cost()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from seedance_pipeline.core.models import GenerationRequest, ReferenceKind
from seedance_pipeline.core.settings import ModelPrice, ModelSpec

FPS = 24

# (resolution, ratio) -> (width, height)
PIXELS_V10: dict[tuple[str, str], tuple[int, int]] = {
    ("480p", "16:9"): (864, 480),
    ("480p", "4:3"): (736, 544),
    ("480p", "1:1"): (640, 640),
    ("480p", "3:4"): (544, 736),
    ("480p", "9:16"): (480, 864),
    ("480p", "21:9"): (960, 416),
    ("720p", "16:9"): (1248, 704),
    ("720p", "4:3"): (1120, 832),
    ("720p", "1:1"): (960, 960),
    ("720p", "3:4"): (832, 1120),
    ("720p", "9:16"): (704, 1248),
    ("720p", "21:9"): (1504, 640),
    ("1080p", "16:9"): (1920, 1088),
    ("1080p", "4:3"): (1664, 1248),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "3:4"): (1248, 1664),
    ("1080p", "9:16"): (1088, 1920),
    ("1080p", "21:9"): (2176, 928),
}
PIXELS_V15: dict[tuple[str, str], tuple[int, int]] = {
    ("480p", "16:9"): (864, 496),
    ("480p", "4:3"): (752, 560),
    ("480p", "1:1"): (640, 640),
    ("480p", "3:4"): (560, 752),
    ("480p", "9:16"): (496, 864),
    ("480p", "21:9"): (992, 432),
    ("720p", "16:9"): (1280, 720),
    ("720p", "4:3"): (1112, 834),
    ("720p", "1:1"): (960, 960),
    ("720p", "3:4"): (834, 1112),
    ("720p", "9:16"): (720, 1280),
    ("720p", "21:9"): (1470, 630),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "4:3"): (1664, 1248),
    ("1080p", "1:1"): (1440, 1440),
    ("1080p", "3:4"): (1248, 1664),
    ("1080p", "9:16"): (1080, 1920),
    ("1080p", "21:9"): (2206, 946),
}
TABLES = {"v10": PIXELS_V10, "v15": PIXELS_V15}


def frame_size(table: str, resolution: str, ratio: str) -> tuple[int, int]:
    """Output pixel size; `adaptive` is estimated as 16:9 (the provider reports its choice)."""
    key = (resolution, "16:9" if ratio == "adaptive" else ratio)
    return TABLES[table][key]


def output_frames(seconds: int) -> int:
    """Frames the provider renders and bills for `seconds`: 24·d+1 (reference section 0, C6:
    108,900 tokens for 720p 16:9 5 s is 1280 x 720 x 121 / 1024)."""
    return FPS * seconds + 1


def estimate_tokens(
    table: str, resolution: str, ratio: str, seconds: int, input_video_seconds: float = 0.0
) -> int:
    """tokens = (24·d+1 output frames + 24 x input video s) x W x H / 1024 (sections 11.1, C6)."""
    width, height = frame_size(table, resolution, ratio)
    frames = Decimal(output_frames(seconds)) + Decimal(str(input_video_seconds)) * FPS
    return int(frames * width * height / 1024)


def cost(tokens: int, price_per_million: float, tier_factor: float = 1.0) -> float:
    """Cost in the route's currency, rounded to 1e-6 (ledger precision)."""
    value = Decimal(tokens) * Decimal(str(price_per_million)) * Decimal(str(tier_factor))
    value = value / Decimal(1_000_000)
    return float(value.quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP))


def unit_price(
    price: ModelPrice | None, resolution: str, *, video_input: bool, flex: bool
) -> float:
    """Price per 1M tokens that applies to one request: the resolution's price (C7), its
    video-input rate when a reference video is sent, times the flex factor on the flex tier.
    0 when the route has no price configured (the cost is then unknown, not free)."""
    if price is None:
        return 0.0
    at = price.at(resolution)
    base = Decimal(str(at.video_input if video_input else at.standard))
    if flex:
        base *= Decimal(str(price.flex_factor))
    return float(base)


def estimated_seconds(request: GenerationRequest, spec: ModelSpec) -> int:
    """Output seconds to estimate: as asked, or the model's maximum for `duration: -1`
    (the model chooses; the estimate must not be below what it may bill)."""
    return request.duration if request.duration > 0 else spec.duration_max


@dataclass(frozen=True)
class Estimate:
    """What one request is expected to cost before it is sent."""

    tokens: int
    unit_price: float
    """Per 1M tokens, resolution, video input and tier applied: price billed tokens with it."""
    cost: float
    currency: str
    seconds: int
    """Output seconds estimated (`duration: -1` counts as the model's maximum)."""


def estimate(
    request: GenerationRequest,
    spec: ModelSpec,
    price: ModelPrice | None,
    currency: str,
    *,
    resolution: str,
    ratio: str,
) -> Estimate:
    """The one estimate: tokens on 24·d+1 frames at the resolved `resolution` and `ratio`,
    priced at the rate that applies (resolution, video input, flex).

    Reference videos switch the rate to `video_input`; their own seconds also count toward
    the bill (section 11.1), but their length is not known before the provider reads them,
    so they are not in `tokens`: the estimate is a floor for video-input jobs.
    """
    seconds = estimated_seconds(request, spec)
    tokens = estimate_tokens(spec.pixel_table, resolution, ratio, seconds)
    video = any(r.kind == ReferenceKind.VIDEO for r in request.references)
    unit = unit_price(price, resolution, video_input=video, flex=request.service_tier == "flex")
    return Estimate(
        tokens=tokens,
        unit_price=unit,
        cost=cost(tokens, unit),
        currency=currency,
        seconds=seconds,
    )
