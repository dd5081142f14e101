"""A request's estimate, from the settings alone: the model and route it names, resolved the
way `resolve_model` will resolve them, priced by `core.pricing.estimate` (the one estimate).

For the CLI (`generate`, `batch --dry-run`) and the API's `POST /v1/estimate`; the workflow
records what `resolve_model` computed with the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

from seedance_pipeline.core.models import GenerationRequest
from seedance_pipeline.core.pricing import estimate as price_request
from seedance_pipeline.core.request_body import effective_ratio, effective_resolution
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
    """Per 1M tokens, in `currency`, resolution, video input and tier applied."""
    cost: float
    currency: str


def estimate(request: GenerationRequest, settings: Settings) -> Estimate:
    """Raises `RequestInvalid` (every field at fault) before computing anything."""
    ensure_valid(request, settings)
    alias = pinned_alias(request, settings) or request.model or settings.default_model
    spec = settings.model(alias)
    route = request.route or settings.default_route
    resolution, ratio = effective_resolution(request, spec), effective_ratio(request, spec)
    priced = price_request(
        request,
        spec,
        spec.prices.get(route),
        settings.route(route).currency,
        resolution=resolution,
        ratio=ratio,
    )
    return Estimate(
        model=alias,
        model_id=request.model_id or spec.ids[route],
        route=route,
        resolution=resolution,
        ratio=ratio,
        seconds=priced.seconds,
        tokens=priced.tokens,
        unit_price=priced.unit_price,
        cost=priced.cost,
        currency=priced.currency,
    )
