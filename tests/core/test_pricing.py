"""Token estimates and costs against hand-computed figures from the reference (sections 11, 13
and 0: 24·d+1 billed frames (C6), resolution-dependent prices (C7))."""

import pytest

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.models import GenerationRequest, Reference, ReferenceKind
from seedance_pipeline.core.pricing import (
    Estimate,
    cost,
    estimate,
    estimate_tokens,
    frame_size,
    output_frames,
    unit_price,
)
from seedance_pipeline.core.settings import ModelPrice, ResolutionPrice, Settings


@pytest.fixture(scope="module")
def shipped() -> Settings:
    return load_settings()


class TestTokens:
    @pytest.mark.parametrize(
        ("table", "res", "ratio", "secs", "expected"),
        [
            ("v15", "720p", "16:9", 5, 108_900),  # 1280x720x121/1024: the official sample (C6)
            ("v15", "720p", "16:9", 4, 87_300),  # 1280x720x97/1024: the 2.0 4 s sample (C6)
            ("v15", "480p", "16:9", 5, 50_638),  # 864x496x121/1024, rounded down
            ("v10", "480p", "16:9", 5, 49_005),  # 864x480x121/1024
            ("v10", "720p", "16:9", 5, 103_818),  # 1248x704x121/1024
            ("v15", "720p", "9:16", 10, 216_900),  # 720x1280x241/1024
            ("v15", "1080p", "16:9", 5, 245_025),  # 1920x1080x121/1024
        ],
    )
    def test_formula_bills_24d_plus_1_frames(
        self, table: str, res: str, ratio: str, secs: int, expected: int
    ) -> None:
        assert estimate_tokens(table, res, ratio, secs) == expected

    def test_output_frames(self) -> None:
        assert [output_frames(s) for s in (4, 5, 15)] == [97, 121, 361]

    def test_video_input_seconds_count(self) -> None:
        """5 s of input video add 120 frames to the 121 rendered: 1280x720x241/1024."""
        assert estimate_tokens("v15", "720p", "16:9", 5, input_video_seconds=5) == 216_900

    def test_adaptive_estimates_as_16_9(self) -> None:
        assert frame_size("v15", "720p", "adaptive") == (1280, 720)


class TestCost:
    def test_mini_720p_5s_usd(self) -> None:
        """Mini at $3.5/M: 108,900 tokens = $0.38115."""
        assert cost(108_900, 3.5) == pytest.approx(0.38115)

    def test_flex_is_half(self) -> None:
        assert cost(108_000, 3.5, 0.5) == pytest.approx(0.189)

    def test_rounded_to_micro(self) -> None:
        assert cost(1, 3.5) == pytest.approx(0.000004)


class TestUnitPrice:
    PRO = ModelPrice(
        standard=7.0,
        video_input=4.3,
        flex_factor=0.5,
        by_resolution={"1080p": ResolutionPrice(standard=7.7, video_input=4.7)},
    )

    @pytest.mark.parametrize(
        ("resolution", "video", "flex", "expected"),
        [
            ("720p", False, False, 7.0),
            ("480p", True, False, 4.3),
            ("1080p", False, False, 7.7),
            ("1080p", True, False, 4.7),
            ("1080p", False, True, 3.85),
        ],
    )
    def test_resolution_video_input_and_tier(
        self, resolution: str, video: bool, flex: bool, expected: float
    ) -> None:
        got = unit_price(self.PRO, resolution, video_input=video, flex=flex)
        assert got == pytest.approx(expected)

    def test_no_price_is_zero(self) -> None:
        assert unit_price(None, "720p", video_input=False, flex=False) == 0.0


class TestEstimate:
    """The one estimate function, on the shipped config."""

    def _estimate(
        self, settings: Settings, request: GenerationRequest, resolution: str
    ) -> Estimate:
        spec = settings.model(request.model or "mini")
        return estimate(
            request, spec, spec.prices["byteplus"], "USD", resolution=resolution, ratio="16:9"
        )

    def test_pro_at_1080p_uses_7_7(self, shipped: Settings) -> None:
        request = GenerationRequest(prompt="x", model="pro", duration=5, resolution="1080p")
        got = self._estimate(shipped, request, "1080p")
        assert got.tokens == 245_025
        assert got.unit_price == pytest.approx(7.7)
        assert got.cost == pytest.approx(1.886693)  # 245,025 x 7.7
        assert got.currency == "USD"

    def test_pro_at_1080p_with_video_input_uses_4_7(self, shipped: Settings) -> None:
        video = Reference(kind=ReferenceKind.VIDEO, url="https://example.com/v.mp4")
        request = GenerationRequest(
            prompt="x", model="pro", duration=5, resolution="1080p", references=(video,)
        )
        assert self._estimate(shipped, request, "1080p").unit_price == pytest.approx(4.7)

    def test_duration_minus_one_is_estimated_at_the_models_maximum(self, shipped: Settings) -> None:
        request = GenerationRequest(prompt="x", model="mini", duration=-1, resolution="720p")
        got = self._estimate(shipped, request, "720p")
        assert got.seconds == 15
        assert got.tokens == 324_900  # 1280x720x361/1024

    def test_flex_factor_applied(self, shipped: Settings) -> None:
        request = GenerationRequest(prompt="x", model="mini", duration=5, service_tier="flex")
        assert self._estimate(shipped, request, "720p").unit_price == pytest.approx(1.75)
