"""Local emulator of the BytePlus ModelArk / Volcengine Ark Seedance video API.

Run it with ``python -m emulator``; build it in code with
``emulator.app.create_app(EmulatorConfig(...))``; use it in tests through
``emulator.testing.running_emulator``. See ``emulator/README.md``.
"""
