"""`config/seedance.toml` exactly as shipped (no overrides, no environment): the documented
output URLs of reference section 0 are accepted and nothing broader; the 1080p price, the
published limits and the retention are what section 0 says."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from seedance_pipeline.config.loader import DEFAULT_CONFIG_PATH, load_settings
from seedance_pipeline.core.settings import ConfigError, Settings

# Sample output URLs as the provider returns them (section 0, C1/C2; query strings shortened).
BYTEPLUS_OUTPUTS = [
    # The official BytePlus tutorial's sample GET response and the vercel/ai recorded fixture.
    "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com/"
    "seedance-1-0-pro/recorded-video.mp4",
    "https://ark-content-generation-ap-southeast-1.tos-ap-southeast-1.volces.com/"
    "seedance-1-0-lite-t2v/02175437639118200000000000000000000ffffc0a8401bdbf53b.mp4"
    "?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Expires=86400&X-Tos-SignedHeaders=host",
    "https://ark-acg-ap-southeast-1.tos-ap-southeast-1.volces.com/dreamina-seedance-2-0/x.mp4",
    "https://ark-content-generation-v2-ap-southeast-1.tos-ap-southeast-1.bytepluses.com/"
    "dreamina-seedance-2-0/x.mp4",
]
VOLCENGINE_OUTPUTS = [
    "https://ark-content-generation-cn-beijing.tos-cn-beijing.volces.com/"
    "doubao-seedance-1-0-pro/02174980163157800000000000000000000ffffac182c17b26890.mp4"
    "?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Expires=86400",
    "https://ark-acg-cn-beijing.tos-cn-beijing.volces.com/doubao-seedance-2-0-fast/"
    "02177815272087000000000000000000000ffffac1823a4881b48_last-frame.png",
]
REFUSED_EVERYWHERE = [
    "http://127.0.0.1:8700/_files/cgt-1/video.mp4",
    "http://localhost/video.mp4",
    "https://evil.example.com/video.mp4",
    "https://volces.com/video.mp4",
    "https://tos-ap-southeast-1.volces.com/video.mp4",  # the domain itself, no bucket
    "https://ark.ap-southeast.bytepluses.com/api/v3/x.mp4",  # the API host, not storage
    "https://bucket.tos-ap-southeast-1.volces.com.evil.example/x.mp4",
]


@pytest.fixture(scope="module")
def shipped() -> Iterator[Settings]:
    """The packaged file with no SEEDANCE_* variable in play (a developer's shell must not
    change what "as shipped" means)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith("SEEDANCE_"):
                mp.delenv(name)
        yield load_settings(DEFAULT_CONFIG_PATH)


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


@pytest.mark.parametrize("url", BYTEPLUS_OUTPUTS)
def test_byteplus_documented_output_urls_are_allowed(shipped: Settings, url: str) -> None:
    assert shipped.route("byteplus").allows_output_host(_host(url))


@pytest.mark.parametrize("url", VOLCENGINE_OUTPUTS)
def test_volcengine_documented_output_urls_are_allowed(shipped: Settings, url: str) -> None:
    assert shipped.route("volcengine").allows_output_host(_host(url))


@pytest.mark.parametrize("url", REFUSED_EVERYWHERE)
@pytest.mark.parametrize("route", ["byteplus", "volcengine"])
def test_loopback_and_foreign_hosts_are_refused(shipped: Settings, route: str, url: str) -> None:
    assert not shipped.route(route).allows_output_host(_host(url))


def test_each_region_refuses_the_other_regions_storage(shipped: Settings) -> None:
    assert not shipped.route("byteplus").allows_output_host(_host(VOLCENGINE_OUTPUTS[0]))
    assert not shipped.route("volcengine").allows_output_host(_host(BYTEPLUS_OUTPUTS[0]))


def test_no_shipped_pattern_is_broader_than_one_storage_domain(shipped: Settings) -> None:
    for route in shipped.routes.values():
        for pattern in route.output_hosts:
            assert pattern.startswith("*.tos-"), pattern
            assert pattern.count(".") >= 3, pattern


@pytest.mark.parametrize("pattern", ["*", "*.com", "*.volces.com", "*.*.volces.com", "ho*st.com"])
def test_broad_output_host_patterns_are_refused_at_load(pattern: str) -> None:
    with pytest.raises(ConfigError, match="output_hosts"):
        load_settings(DEFAULT_CONFIG_PATH, routes={"byteplus": {"output_hosts": [pattern]}})


def test_pro_at_1080p_costs_7_7_on_byteplus(shipped: Settings) -> None:
    price = shipped.model("pro").prices["byteplus"]
    assert (price.at("1080p").standard, price.at("1080p").video_input) == (7.7, 4.7)
    assert (price.at("720p").standard, price.at("720p").video_input) == (7.0, 4.3)
    assert (price.at("480p").standard, price.at("480p").video_input) == (7.0, 4.3)


def test_published_limits(shipped: Settings) -> None:
    enterprise = shipped.account_limits["enterprise"]
    individual = shipped.account_limits["individual"]
    assert (enterprise.concurrency_per_model, enterprise.rpm_per_model) == (10, 600)
    assert (individual.concurrency_per_model, individual.rpm_per_model) == (3, 180)
    assert enterprise.queued_per_account == individual.queued_per_account == 120
    for name in shipped.routes:
        assert shipped.route(name).account == "enterprise"
        assert shipped.limits_for(name) == enterprise


def test_retention_is_24_hours_on_every_route(shipped: Settings) -> None:
    assert {r.retention_hours for r in shipped.routes.values()} == {24}


def test_reference_limits_follow_section_0(shipped: Settings) -> None:
    refs = shipped.references
    assert refs.max_video_bytes == 200 * 1024 * 1024
    assert refs.max_request_body_bytes == 64 * 1024 * 1024


def test_no_download_redirection_in_the_shipped_file(shipped: Settings) -> None:
    assert shipped.storage.resolve_hosts == {}


def test_an_account_class_without_limits_is_refused(tmp_path: Path) -> None:
    text = DEFAULT_CONFIG_PATH.read_text(encoding="utf-8")
    head, _, tail = text.partition("[account_limits.individual]")
    config = tmp_path / "seedance.toml"
    config.write_text(head + tail.split("\n\n", 1)[1], encoding="utf-8")
    with pytest.raises(ConfigError, match=r"routes.byteplus.account 'individual'"):
        load_settings(config, routes={"byteplus": {"account": "individual"}})
