"""One default trial under each attention kernel, alternating in one process: what engine version 4
changed, measured on a whole trial (weak-stage reuse off, one torch thread).

    python scripts/attention_trial_ab.py SEED ARMS     # ARMS: 2 (eager, sdpa) or 4 (twice each)

Prints one JSON line per arm: wall seconds, test accuracy, each stage's steps and seconds. "sdpa"
loads the backbone as engine version 3 did under bf16 (Runtime.attention patched to None here only).
"""
import os, sys, time, json
os.environ["LABELMIX_REUSE_WEAK_STAGES"] = "false"
import torch; torch.set_num_threads(1)
from worker.engine import runtime as R
from worker.engine.spec import TrialSpec
from worker.engine.trial import run_trial
real = R.Runtime.attention
spec = TrialSpec(task="word_sentiment", n_weak=640, n_gold=192, seed=int(sys.argv[1]) if len(sys.argv) > 1 else 1)
for arm in ("eager", "sdpa", "eager", "sdpa")[: int(sys.argv[2]) if len(sys.argv) > 2 else 2]:
    R.Runtime.attention = real if arm == "eager" else property(lambda self: None)
    t = time.perf_counter(); r = run_trial(spec); w = time.perf_counter() - t
    print(json.dumps({"arm": arm, "wall_s": round(w, 1), "acc": r.test_accuracy, "stages": [(s.name, s.steps, round(s.wall_s, 1)) for s in r.stages]}), flush=True)
