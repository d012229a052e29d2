"""The allocations' search as an Optuna sampler: the surface search with the quarter opening
(search_strategies.ALLOCATION_SEARCH, `surface_quarter`), asking inside a real study. Replayed as
allocations measure (two seeds a point, docs/bench/search-replays.md) it chose best at six points, a
quarter of the grid, on tables with ten seeds of $256 and six of $16 and $64. Its lean opening is what
leaves the default eight points room to search with four methods, where every method's corners fill
them; the tables hold two methods, so that case is not measured.

An allocation's study opens with `opening_params` (enqueued), then every point it asks comes from
`SurfaceSampler`: one Gaussian process over (weak share, method) fitted to the points told so far
(each a point's mean over its seeds), and the untried candidate with the largest expected
improvement over the best of them. A point is measured once on all the request's seeds, so a
candidate already asked (finished or still training) is not asked again while another is left.
Parameters the surface does not cover (icl's shot count) come from a seeded random sampler.
"""

from __future__ import annotations

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from app.allocations.search import SHARE_STEP, SearchSpace
from app.allocations.strategies import ALLOCATION_SEARCH, Candidate, chances, lean_opening, propose
from app.allocations.verdict import MARGIN, candidates
from worker.engine.spec import Method

# icl's shots in the opening: the middle of its choices, as the first version's corners used.
OPENING_ICL_SHOTS = 16


def opening_params(space: SearchSpace, limit: int) -> list[dict]:
    """Optuna params of the allocation's first points (search_strategies.lean_opening, mixed at
    ALLOCATION_SEARCH.middle), at most `limit`."""
    out = []
    for c in lean_opening(list(candidates(space)), ALLOCATION_SEARCH.middle):
        params = {"method": c.method, "weak_share": c.share}
        if c.method == Method.icl.value:
            params["icl_shots"] = OPENING_ICL_SHOTS
        out.append(params)
    return out[:limit]


class SurfaceSampler(optuna.samplers.BaseSampler):
    def __init__(self, space: SearchSpace, seed: int | None = None):
        self._options = candidates(space)
        self._by_point = {point: c for c, point in self._options.items()}
        self._space = space
        self._methods = [m.value for m in space.methods]
        self._random = optuna.samplers.RandomSampler(seed=seed)

    def _candidate(self, params: dict) -> Candidate | None:
        if "method" not in params or "weak_share" not in params:
            return None
        point = self._space.point_for(Method(params["method"]), params["weak_share"], params.get("icl_shots"))
        return self._by_point.get(point)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict:
        return {"method": CategoricalDistribution(self._methods),
                "weak_share": FloatDistribution(0.0, 1.0, step=SHARE_STEP)}

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict) -> dict:
        if "fixed_params" in trial.system_attrs:  # an enqueued opening point: its params are set
            return {}
        results: dict[Candidate, list[float]] = {}
        asked: dict[Candidate, int] = {}
        for other in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING)):
            found = self._candidate(other.params) if other.number != trial.number else None
            if found is None:
                continue
            asked[found] = asked.get(found, 0) + 1
            if other.state == TrialState.COMPLETE and other.value is not None:
                results.setdefault(found, []).append(other.value)
        if not results:
            return {}  # nothing told yet (every opening point still training): the random sampler asks
        pick = propose(chances(results, list(self._options), MARGIN), list(self._options), asked)
        return {"method": pick.method, "weak_share": pick.share}

    def sample_independent(self, study, trial, param_name, param_distribution):
        return self._random.sample_independent(study, trial, param_name, param_distribution)
