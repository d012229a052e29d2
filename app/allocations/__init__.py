"""Allocations: how to split a budget. The request's life as an Optuna study (`lifecycle`), its
search space (`search`), sampler (`sampler`), strategies (`strategies`) and stop rule (`verdict`);
the recommendation (`recommend`, `unstable_leader`); several budgets at once (`sweeps`); the
callback when it ends (`webhooks`, `callback_targets`); listing and reports (`listing`, `report`);
its name in optuna-dashboard (`study_labels`); and the `/allocate`, `/allocations` and
`/webhook-secret` routes and bodies.
"""
