"""The configured prices (config/seedance.toml) against figures computed by hand from the
reference (section 11: USD and CNY per 1M tokens; section 13: pixel tables).

Hand computation, 2.x pixel table: 720p 16:9 = 1280x720, 24 fps, and the provider bills
24·d+1 frames (section 0, C6): tokens = W x H x (24·d+1) / 1024
  5 s   = 1280*720*121/1024 = 108,900 tokens;  with 5 s of input video (+120 frames): 216,900
  1 s   = 1280*720*25/1024 = 22,500 (720p), 864*496*25/1024 = 10,462 (480p),
          1920*1080*25/1024 = 50,625 (1080p, priced at 7.7 on BytePlus: C7)
"""

from __future__ import annotations

import pytest

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.pricing import cost, estimate_tokens, unit_price
from seedance_pipeline.core.settings import ModelPrice, Settings


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
    unit = unit_price(p, resolution, video_input=bool(input_video_seconds), flex=flex)
    return cost(tokens, unit)


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
        ("mini", 0.38115),  # 108,900 x 3.5 / 1e6
        ("fast", 0.60984),  # 108,900 x 5.6 / 1e6
        ("pro", 0.7623),  # 108,900 x 7.0 / 1e6
    ],
)
def test_a_5s_720p_job_on_byteplus(settings: Settings, alias: str, expected: float) -> None:
    assert job_cost(settings, alias, "byteplus") == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [("mini", 0.190575), ("fast", 0.30492), ("pro", 0.38115)],
)
def test_flex_tier_is_half_the_online_price(
    settings: Settings, alias: str, expected: float
) -> None:
    assert job_cost(settings, alias, "byteplus", flex=True) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    ("alias", "expected"),
    [
        ("mini", 0.45549),  # 216,900 x 2.1 / 1e6
        ("fast", 0.71577),  # 216,900 x 3.3 / 1e6
        ("pro", 0.93267),  # 216,900 x 4.3 / 1e6
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
        ("480p", 0.073234),  # 10,462 x 7 / 1e6; the reference quotes ~$0.070/s
        ("720p", 0.1575),  # 22,500 x 7 / 1e6; ~$0.152/s
        ("1080p", 0.389813),  # 50,625 x 7.7 / 1e6 (C7); integrators see $0.374-0.376/s
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
    assert job_cost(settings, "pro", "volcengine") == pytest.approx(5.0094, abs=1e-9)
    got = job_cost(settings, "pro", "volcengine", input_video_seconds=5)
    assert got == pytest.approx(6.0732, abs=1e-9)  # 216,900 x 28 / 1e6
