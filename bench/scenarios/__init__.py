"""One module per benchmark scenario; each fills a `ScenarioResult` (`bench.report`)."""
