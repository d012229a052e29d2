"""The statistics behind an answer, as pure functions of numbers: intervals and ties over seeds and
test examples (`intervals`), and the learning surface fitted to measured points (`surface`).

Nothing here reads a database, a request or the engine (the `lint-imports` contracts in
pyproject.toml say so), so each is tested with numbers alone and reused by the calibration harness.
"""
