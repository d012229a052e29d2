"""The allocation search space: a method and a weak share of spend, turned into label counts.

A point spends `weak_share` of the budget on weak labels and the rest on gold, rounded down to
whole labels, capped by the pool, and nudged to what the method can train on (a stage of 1-2
labels is dropped). Optuna searches it, with the sampler of surface_sampler.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import optuna

from app.stats.prices import Prices
from worker.engine.budget import MIN_STAGE_LABELS, AllocationError, plan_labels
from worker.engine.spec import DEFAULT_RECIPE, Method, MethodParams, Recipe, TrialSpec

optuna.logging.set_verbosity(optuna.logging.WARNING)

SHARE_STEP = 0.05
ICL_SHOT_CHOICES = (4, 8, 16, 32, 64)
FIRST_SHARES = (0.0, 1.0, 0.5)


@dataclass(frozen=True)
class Point:
    """An allocation point: a method and its label counts, the unit the search asks for, the trial
    cache keys and the frontier shows. Its cost exists only at some prices."""

    method: Method
    n_weak: int
    n_gold: int

    def cost(self, prices: Prices) -> float:
        return prices.cost(self.n_weak, self.n_gold)


@dataclass(frozen=True)
class SearchSpace:
    methods: tuple[Method, ...]
    budget: float
    weak_cost: float
    gold_cost: float
    pool_size: int
    model: str
    params: MethodParams  # the recipe's, with the request's overrides
    recipe: Recipe = DEFAULT_RECIPE

    def point_for(self, method: Method, weak_share: float, icl_shots: int | None = None) -> Point | None:
        """The label counts for a method and share, or None when the method cannot train on them."""
        # A hair of tolerance: 0.3 * 10 / 0.1 must buy 30 labels, not 29.
        n_weak = math.floor(weak_share * self.budget / self.weak_cost + 1e-9)
        n_gold = math.floor((1 - weak_share) * self.budget / self.gold_cost + 1e-9)
        if method == Method.icl:
            shots = min(icl_shots or ICL_SHOT_CHOICES[0], self.params.icl_max_shots, n_weak + n_gold)
            n_weak = min(n_weak, round(shots * weak_share))
            n_gold = min(n_gold, shots - n_weak)
        n_weak, n_gold = self._fit_pool(n_weak, n_gold)
        if method != Method.icl:
            n_weak, n_gold = self._drop_short_stages(method, n_weak, n_gold)
        point = Point(method, n_weak, n_gold)
        try:
            plan_labels(self.spec(point, seed=0))
        except AllocationError:
            return None
        return point

    def _fit_pool(self, n_weak: int, n_gold: int) -> tuple[int, int]:
        # Labels bought cannot outnumber the examples there are; keep the gold ones first.
        n_gold = min(n_gold, self.pool_size)
        return min(n_weak, self.pool_size - n_gold), n_gold

    def _drop_short_stages(self, method: Method, n_weak: int, n_gold: int) -> tuple[int, int]:
        shots = self.params.n_shots if method == Method.prompted_sft else 0
        weak_stage = n_weak - shots if n_weak >= shots else n_weak
        if 0 < weak_stage < MIN_STAGE_LABELS:
            n_weak -= weak_stage
        if 0 < n_gold < MIN_STAGE_LABELS:
            n_gold = 0
        return n_weak, n_gold

    def spec(self, point: Point, seed: int, task: str = "", weak_labeler: str = "default") -> TrialSpec:
        return TrialSpec(
            task=task or "_",
            model=self.model,
            method=point.method,
            n_weak=point.n_weak,
            n_gold=point.n_gold,
            seed=seed,
            weak_labeler=weak_labeler,
            recipe=self.recipe,
            params=self.params,
        )

    def suggest(self, trial: optuna.Trial) -> Point | None:
        method = Method(trial.suggest_categorical("method", [m.value for m in self.methods]))
        share = trial.suggest_float("weak_share", 0.0, 1.0, step=SHARE_STEP)
        shots = trial.suggest_categorical("icl_shots", ICL_SHOT_CHOICES) if method == Method.icl else None
        return self.point_for(method, share, shots)

    def first_grid(self, limit: int) -> list[dict]:
        """Optuna params for the corners and the middle of every method, feasible ones only: the first
        version's opening, kept as the benchmarks' workload (allocations open with
        surface_sampler.opening_params)."""
        grid, seen = [], set()
        for share in FIRST_SHARES:
            for method in self.methods:
                params = {"method": method.value, "weak_share": share}
                if method == Method.icl:
                    params["icl_shots"] = 16
                point = self.point_for(method, share, params.get("icl_shots"))
                if point is not None and point not in seen:
                    seen.add(point)
                    grid.append(params)
        return grid[:limit]

    def cheapest_cost(self, method: Method) -> float:
        """What the cheapest allocation the method can train on costs."""
        cheaper = min(self.weak_cost, self.gold_cost)
        return {
            Method.seq_sft: MIN_STAGE_LABELS * cheaper,
            Method.icl: cheaper,
            Method.prompted_sft: (self.params.n_shots + MIN_STAGE_LABELS) * cheaper,
            Method.logconf_sft: MIN_STAGE_LABELS * self.weak_cost,  # needs a weak stage
            Method.uncertainty_sft: MIN_STAGE_LABELS * (self.weak_cost + self.gold_cost),  # weak, then gold
        }[method]


# On Postgres, Optuna's tables live in this schema of the app's database: Optuna has a table called
# `trials`, as the app does, so the two cannot share a schema (either one's create fails).
OPTUNA_SCHEMA = "labelmix_optuna"


def _ensure_schema(url: str, schema: str) -> None:
    from sqlalchemy import create_engine, exc, text

    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    except exc.IntegrityError:
        pass  # another process created it at the same moment
    finally:
        engine.dispose()


# Optuna creates its tables on first use, and two processes doing so at once on a new database
# collide (one gets "CREATE TYPE studydirection" failing: a 500 on a fresh install). A Postgres
# advisory lock lets one create them while the others wait, then find them.
OPTUNA_SETUP_LOCK = 0x6C6D7801


@lru_cache
def optuna_storage(url: str) -> optuna.storages.RDBStorage:
    # Same database as the app, in a schema of its own: Optuna has tables named `trials` and
    # `alembic_version` too, which would collide with the app's in the public schema.
    engine_kwargs: dict = {"pool_pre_ping": True}
    if not url.startswith("postgresql"):
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    from sqlalchemy import create_engine, text

    engine_kwargs["connect_args"] = {"options": f"-c search_path={OPTUNA_SCHEMA}"}
    lock_engine = create_engine(url)
    try:
        with lock_engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": OPTUNA_SETUP_LOCK})
            try:
                _ensure_schema(url, OPTUNA_SCHEMA)
                return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": OPTUNA_SETUP_LOCK})
    finally:
        lock_engine.dispose()
