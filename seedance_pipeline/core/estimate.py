"""The pre-submission estimate of a request: tokens by the provider's formula, times the
route's price for this request (video input and flex tier included).

One function for the API's `POST /v1/estimate` and anything else that shows an estimate, with
the same rule as the workflow's: a `-1` (model chooses) duration is estimated at the
model's longest, so the estimate is an upper bound, never a surprise.
"""

from __future__ import annotations

from dataclasses import dataclass

from seedance_pipeline.core.models import GenerationRequest, ReferenceKind
from seedance_pipeline.core.pricing import cost, estimate_tokens
from seedance_pipeline.core.settings import Settings
from seedance_pipeline.core.validation import ensure_valid, pinned_alias


@dataclass(frozen=True)
class Estimate:
    model: str
    model_id: str
    route: str
    resolution: str
    ratio: str
    seconds: int
    tokens: int
    unit_price: float
    """Per 1M tokens, in `currency`, after the video-input and flex adjustments."""
    cost: float
    currency: str


def estimate(request: GenerationRequest, settings: Settings) -> Estimate:
    """Raises `RequestInvalid` (every field at fault) before computing anything."""
    ensure_valid(request, settings)
    alias = pinned_alias(request, settings) or request.model or settings.default_model
    spec = settings.model(alias)
    route = request.route or settings.default_route
    resolution = request.resolution or spec.default_resolution
    ratio = request.ratio or spec.default_ratio
    seconds = request.duration if request.duration > 0 else spec.duration_max
    tokens = estimate_tokens(spec.pixel_table, resolution, ratio, seconds)
    price = spec.prices.get(route)
    unit = 0.0
    if price is not None:
        has_video = any(r.kind == ReferenceKind.VIDEO for r in request.references)
        unit = price.video_input if has_video else price.standard
        if request.service_tier == "flex":
            unit *= price.flex_factor
    return Estimate(
        model=alias,
        model_id=request.model_id or spec.ids[route],
        route=route,
        resolution=resolution,
        ratio=ratio,
        seconds=seconds,
        tokens=tokens,
        unit_price=unit,
        cost=cost(tokens, unit),
        currency=settings.route(route).currency,
    )
