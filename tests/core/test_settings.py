"""Settings: the packaged config loads; bad configs fail at load with the entry named."""

from pathlib import Path

import pytest

from seedance_pipeline.config.loader import load_settings
from seedance_pipeline.core.settings import ConfigError


class TestDefaults:
    def test_packaged_config_loads_with_both_routes(self) -> None:
        """The shipped TOML has Mini on both routes with its date-suffixed IDs."""
        settings = load_settings()
        mini = settings.model("mini")
        assert mini.ids["byteplus"].startswith("dreamina-seedance-2-0-mini-")
        assert mini.ids["volcengine"].startswith("doubao-seedance-2-0-mini-")
        assert mini.resolutions == ("480p", "720p")
        assert (mini.duration_min, mini.duration_max) == (4, 15)
        assert settings.route("byteplus").currency == "USD"
        assert settings.route("volcengine").currency == "CNY"

    def test_fallback_chain_is_mini_fast_pro(self) -> None:
        settings = load_settings()
        assert settings.model("mini").fallback == "fast"
        assert settings.model("fast").fallback == "pro"
        assert settings.model("pro").fallback is None

    def test_environment_overrides_one_nested_key(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """SEEDANCE_ROUTES__BYTEPLUS__BASE_URL replaces only that key."""
        monkeypatch.setenv("SEEDANCE_ROUTES__BYTEPLUS__BASE_URL", "http://127.0.0.1:9/api/v3")
        settings = load_settings()
        assert settings.route("byteplus").base_url == "http://127.0.0.1:9/api/v3"
        assert settings.route("byteplus").currency == "USD"

    def test_api_key_is_read_at_use_and_never_dumped(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ARK_API_KEY", "sk-live-abcdef123456")
        settings = load_settings()
        assert settings.route("byteplus").api_key() == "sk-live-abcdef123456"
        assert "sk-live-abcdef123456" not in settings.model_dump_json()


class TestRejected:
    @pytest.mark.parametrize(
        ("overrides", "fragment"),
        [
            (
                {"models": {"mini": {"ids": {"volcengine": "dreamina-seedance-2-0-mini-260615"}}}},
                "models.mini.ids.volcengine",
            ),
            (
                {"models": {"mini": {"ids": {"byteplus": "doubao-seedance-2-0-mini-260615"}}}},
                "models.mini.ids.byteplus",
            ),
            ({"models": {"mini": {"fallback": "nope"}}}, "models.mini.fallback"),
            ({"models": {"pro": {"fallback": "mini"}}}, "loops"),
            ({"default_model": "ultra"}, "default_model"),
            ({"models": {"mini": {"duration_min": 20}}}, "duration_min"),
            ({"models": {"mini": {"default_resolution": "4k"}}}, "default_resolution"),
            ({"routes": {"byteplus": {"currency": "EUR"}}}, "currency"),
            ({"models": {"mini": {"ids": {"moon": "x"}}}}, "no route named 'moon'"),
        ],
        ids=[
            "dreamina-on-volcengine",
            "doubao-on-byteplus",
            "unknown-fallback",
            "fallback-loop",
            "unknown-default",
            "duration-range",
            "default-resolution",
            "currency",
            "route",
        ],
    )
    def test_bad_config_names_the_entry(self, overrides: dict, fragment: str) -> None:
        with pytest.raises(ConfigError) as info:
            load_settings(**overrides)
        assert fragment in str(info.value)

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="not found"):
            load_settings(tmp_path / "absent.toml")

    def test_invalid_toml(self, tmp_path: Path) -> None:
        bad = tmp_path / "bad.toml"
        bad.write_text("routes = [unclosed")
        with pytest.raises(ConfigError, match="not valid TOML"):
            load_settings(bad)
