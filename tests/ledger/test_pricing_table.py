"""The configured prices (config/seedance.toml) against figures computed by hand from the
reference (section 11: USD and CNY per 1M tokens; section 13: pixel tables).

Hand computation, 2.x pixel table: 720p 16:9 = 1280x720, 24 fps, tokens = W x H x 24 x s / 1024
  5 s   = 1280*720*24*5/1024  = 108,000 tokens;  with 5 s of input video: 216,000 tokens
  1 s   = 21,600 (720p), 10,044 (480p 864x496), 48,600 (1080p 1920x1080)
"""

from __future__ import annotations

import pytest

from seedance_pipeline.core.pricing import cost, estimate_tokens
from seedance_pipeline.core.settings import ModelPrice, Settings, load_settings


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


def price(settings: Settings, alias: str, route: str) -> ModelPrice:
    return settings.model(alias).prices[route]


def job_cost(
    settings: Settings,
    alias: str,
    route: str,
    *,
    resolution: str = "720p",
    seconds: int = 5,
    input_video_seconds: float = 0.0,
    flex: bool = False,
) -> float:
    """What one job costs with the configured prices: video-input rate when the request has
    a reference video (its seconds are billed too), flex at the configured factor."""
    spec = settings.model(alias)
    p = price(settings, alias, route)
    tokens = estimate_tokens(spec.pixel_table, resolution, "16:9", seconds, input_video_seconds)
    unit = p.video_input if input_video_seconds else p.standard
    return cost(tokens, unit, p.flex_factor if flex else 1.0)


@pytest.mark.parametrize(
    ("alias", "standard", "video_input"),
    [("mini", 3.5, 2.1), ("fast", 5.6, 3.3), ("pro", 7.0, 4.3)],
)
def test_byteplus_rates_are_the_reference_list_prices(
    settings: Settings, alias: str, standard: float, video_input: float
) -> None:
    p = price(settings, alias, "byteplus")
    assert (p.standard, p.video_input, p.flex_factor) == (standard, video_input, 0.5)
    assert settings.route("byteplus").currency == "USD"


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("mini", 0.378),  # 108,000 x 3.5 / 1e6
        ("fast", 0.6048),  # 108,000 x 5.6 / 1e6
        ("pro", 0.756),  # 108,000 x 7.0 / 1e6
    ],
)
def test_a_5s_720p_job_on_byteplus(settings: Settings, alias: str, expected: float) -> None:
    assert job_cost(settings, alias, "byteplus") == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [("mini", 0.189), ("fast", 0.3024), ("pro", 0.378)],
)
def test_flex_tier_is_half_the_online_price(
    settings: Settings, alias: str, expected: float
) -> None:
    assert job_cost(settings, alias, "byteplus", flex=True) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("mini", 0.4536),  # 216,000 x 2.1 / 1e6
        ("fast", 0.7128),  # 216,000 x 3.3 / 1e6
        ("pro", 0.9288),  # 216,000 x 4.3 / 1e6
    ],
)
def test_video_input_bills_both_videos_at_the_video_input_rate(
    settings: Settings, alias: str, expected: float
) -> None:
    got = job_cost(settings, alias, "byteplus", input_video_seconds=5)
    assert got == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("resolution", "per_second"),
    [
        ("480p", 0.070308),  # 10,044 x 7 / 1e6; the reference quotes ~$0.070/s
        ("720p", 0.1512),  # 21,600 x 7 / 1e6; ~$0.151/s
        ("1080p", 0.3402),  # 48,600 x 7 / 1e6; ~$0.340/s
    ],
)
def test_seedance_2_per_second_figures(
    settings: Settings, resolution: str, per_second: float
) -> None:
    got = job_cost(settings, "pro", "byteplus", resolution=resolution, seconds=1)
    assert got == pytest.approx(per_second, abs=1e-6)


def test_volcengine_prices_are_in_yuan(settings: Settings) -> None:
    """2.0 on Volcengine: 46 CNY/M, 28 CNY/M with video input (reference 11.3)."""
    assert settings.route("volcengine").currency == "CNY"
    assert job_cost(settings, "pro", "volcengine") == pytest.approx(4.968, abs=1e-9)
    got = job_cost(settings, "pro", "volcengine", input_video_seconds=5)
    assert got == pytest.approx(6.048, abs=1e-9)  # 216,000 x 28 / 1e6
