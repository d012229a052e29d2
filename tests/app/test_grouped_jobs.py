"""A worker that may train trials together claims queued companions on the same base and stores each."""

from __future__ import annotations

from sqlalchemy import select

from worker.engine.spec import TrialSpec

SMALL = dict(max_steps_per_stage=3, eval_every=2, n_test=32, max_length=32, min_val_labels=0)


class RecordingDispatcher:
    def __init__(self) -> None:
        self.trials: list[int] = []
        self.advances: list[str] = []

    def enqueue_trials(self, ids: list[int]) -> None:
        self.trials.extend(ids)

    def enqueue_advance(self, allocation_id: str) -> None:
        self.advances.append(allocation_id)


def test_a_worker_runs_queued_trials_of_the_same_base_as_one_group(configure, clean_db, monkeypatch):
    configure(clean_db)
    monkeypatch.setenv("LABELMIX_TRIAL_GROUP_SIZE", "3")
    from app import jobs
    from app.db.models import Trial
    from app.db.session import session_scope
    from app.tasks.registry import register_named
    from app.trials import cache as trials
    from worker.engine.settings import engine_settings

    engine_settings.cache_clear()
    specs = [
        TrialSpec(task="cities", method=m, n_weak=24, n_gold=12, seed=s, weak_labeler="bow", params=SMALL)
        for m, s in (("seq_sft", 0), ("logconf_sft", 1))
    ]
    other_model = TrialSpec(task="cities", model="minilm-l3", n_gold=12, weak_labeler="bow", params=SMALL)
    with session_scope() as session:
        task = register_named(session, "cities")
        ids = [trials.get_or_create_trial(session, task, s).id for s in [*specs, other_model]]

    dispatcher = RecordingDispatcher()
    assert jobs.run_trial_job(ids[0], dispatcher) == jobs.JobOutcome.done
    with session_scope() as session:
        rows = {t.id: t for t in session.scalars(select(Trial).where(Trial.id.in_(ids)))}
        assert rows[ids[0]].status == rows[ids[1]].status == "done"
        assert rows[ids[0]].worker == rows[ids[1]].worker
        assert rows[ids[2]].status == "queued"  # another base model: not in this group
        assert rows[ids[1]].result["spec"]["method"] == "logconf_sft"
    # The companion's own message, when it comes, finds its trial done.
    assert jobs.run_trial_job(ids[1], dispatcher) == jobs.JobOutcome.skipped
    assert dispatcher.trials == []
    engine_settings.cache_clear()
