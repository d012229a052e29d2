"""The research harness: benchmarks, search replays, calibration and the learning-surface report.

It measures the product (app/, worker/) and is not part of it: the wheel does not install it
(pyproject.toml finds only app* and worker*), and product code never imports it (lint-imports). Run
it from a checkout: `python -m bench.engine.allocation`, `python -m bench.service.upload_memory`,
`python -m bench.calibration`, `python -m bench.surface_report`.

- `engine/`: the training engine's speed (throughput of an allocation, attention kernels, precision,
  padding, evaluation, MFU, weak labelers, a transformers.Trainer baseline).
- `service/`: the service's store and API latency, upload memory, search replays, bf16 parity.
- `calibration/`: the coverage of the service's intervals, measured on trials.
"""
