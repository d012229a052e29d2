"""How much weak-stage training a study grid repeats, and what the weak-stage store saves (no training).

    python -m bench.engine.grid_reuse --budgets 16,32,64,128,256,512,1024 --shares 9

In a grid, one n_weak recurs at many (budget, share) pairs (64 weak labels at $8 with share 0.8 is
also $16 with share 0.4), each with its own n_gold; seq_sft and uncertainty_sft share weak stages
too. Counts every point's planned weak-stage steps (its schedule's maximum; early stopping may end
a stage sooner) once per point and once per distinct weak stage; and uncertainty_sft's scorings of
the pool (the weak-trained model on every untaken example), once per point and once per weak stage,
which is what the store keeps of them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from app.studies.grid import plan
from app.studies.schemas import StudyRequest
from worker.engine.budget import plan_labels
from worker.engine.spec import Method, TrialSpec, recipe_params, weak_stage_method
from worker.engine.training.loop import Schedule


def weak_stage_steps(method: str, n_weak: int, n_gold: int, recipe: str) -> int:
    spec = TrialSpec(task="_", method=method, n_weak=n_weak, n_gold=n_gold, recipe=recipe, task_version=1)
    stage = plan_labels(spec).weak_stage
    n_train = stage.total - stage.n_val
    return Schedule.for_stage(n_train, spec.params, validated=stage.n_val > 0).total_steps if n_train else 0


def main(
    budgets: Annotated[str, typer.Option(help="comma-separated budgets")] = "16,32,64,128,256,512,1024",
    shares: Annotated[int, typer.Option(help="weak shares 0, 1/(n-1), ..., 1")] = 9,
    methods: Annotated[str, typer.Option(help="comma-separated methods")] = "seq_sft,uncertainty_sft,logconf_sft",
    weak_cost: float = 0.1,
    gold_cost: float = 1.0,
    pool_size: int = 30_000,
    recipe: str = "fast",
) -> None:
    request = StudyRequest(
        task="_", budgets=[float(b) for b in budgets.split(",")], weak_shares=[i / (shares - 1) for i in range(shares)],
        weak_cost=weak_cost, gold_cost=gold_cost, methods=methods.split(","), recipe=recipe, seeds=[0],
    )
    points, _ = plan(request, pool_size, recipe_params(recipe))
    every, distinct = 0, {}
    scorings, scored_stages = 0, set()
    for p in points:
        if not p["n_weak"]:
            continue
        steps = weak_stage_steps(p["method"], p["n_weak"], p["n_gold"], recipe)
        every += steps
        variant = weak_stage_method(p["method"])
        distinct[(variant, p["n_weak"])] = steps
        if p["method"] == Method.uncertainty_sft.value and p["n_gold"]:
            scorings += 1
            scored_stages.add(p["n_weak"])
    once = sum(distinct.values())
    with_weak = sum(1 for p in points if p["n_weak"])
    print(f"{len(points)} points per seed, {with_weak} with a weak stage, {len(distinct)} distinct weak stages")
    print(f"planned weak-stage steps: {every} trained per point, {once} with the store: {every / max(once, 1):.2f}x fewer")
    if scorings:
        print(f"uncertainty_sft pool scorings after a weak stage: {scorings} per point, {len(scored_stages)} with "
              f"the store: {scorings / len(scored_stages):.2f}x fewer")


if __name__ == "__main__":
    typer.run(main)
