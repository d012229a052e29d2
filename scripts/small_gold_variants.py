"""One word_sentiment trial under a training variant: why 64 gold labels learn on one seed in five.

    python scripts/small_gold_variants.py VARIANT N_GOLD SEED [N_WEAK]

VARIANT joins parts with "+": base; lrX (learning rate); headlrX (the head's learning rate as a
multiple of the adapter's); headinitX (HEAD_INIT_SCALE); dropout (the base's own dropout on);
epochsN (MAX_UNVALIDATED_EPOCHS); fixedN (fixed_schedule_examples); wdX (AdamW weight decay); initK
(the adapter and head drawn from seed + 1000 K, the labels from SEED: separates the draw of labels
from the initialization); balanced (the first N_GOLD labels bought balanced over word polarity x
polarity shown); minvalN (min_val_labels); probe or probeC (LP-FT: the first stage's head starts from
a logistic regression, inverse regularization C (default 1), fitted to the stage's labels on the
frozen model's pooled features); mlpW (the head a two-layer perceptron of width W, GELU, instead of
one linear layer: the task's label is an XOR of the word's polarity and the polarity shown, which a
linear head on pooled features cannot express). Prints one JSON line: test accuracy, AUROC, learned, the
stages. Research, not product: it patches the engine in this process only. docs/engine.md, "Recipes, stages
and accuracy", reports what it found (one torch thread; run two seeds at a time on two cores).
"""
import json, os, sys, time
os.environ.setdefault("LABELMIX_TORCH_THREADS", "1")
import torch
torch.set_num_threads(1)
from worker.engine import spec as S
from worker.engine.training import loop
variant, n_gold, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
n_weak = int(sys.argv[4]) if len(sys.argv) > 4 else 0
overrides = {}
RealAdamW = torch.optim.AdamW
def grouped(params, lr, head_scale=1.0, head_wd=0.01, **kw):
    params = list(params)
    head = [p for p in params if p.shape[0] == 2 and p.dim() <= 2 and (p.dim() == 1 or p.shape[1] > 16)]
    rest = [p for p in params if all(p is not h for h in head)]
    return RealAdamW([{"params": rest}, {"params": head, "lr": lr * head_scale, "weight_decay": head_wd}], lr=lr, **kw)
for part in variant.split("+"):
    if part.startswith("headlr"):
        s = float(part[6:]); loop.torch.optim.AdamW = lambda p, lr, s=s, **kw: grouped(p, lr, head_scale=s, **kw)
    elif part.startswith("lr"):
        overrides["lr"] = float(part[2:])
    elif part.startswith("fixed"):
        overrides["fixed_schedule_examples"] = int(part[5:])
    elif part == "dropout":
        from worker.engine.training import classifier as C
        orig = C.build_classifier
        C.build_classifier = lambda m, r, backbone=None, dropout=False: orig(m, r, None, True)
    elif part.startswith("minval"):
        overrides["min_val_labels"] = int(part[6:])
    elif part.startswith("headinit"):
        from worker.engine.training import classifier as C
        C.HEAD_INIT_SCALE = float(part[8:])
    elif part.startswith("init"):
        k = int(part[4:]); from worker.engine import runtime as R
        real = torch.manual_seed
        R.torch.manual_seed = lambda s, k=k, real=real: real(s + 1000 * k)
    elif part.startswith("epochs"):
        loop.MAX_UNVALIDATED_EPOCHS = int(part[6:])
    elif part.startswith("wd"):
        w = float(part[2:]); loop.torch.optim.AdamW = lambda p, lr, w=w, weight_decay=0.01, **kw: RealAdamW(p, lr=lr, weight_decay=w, **kw)
    elif part == "balanced":
        import numpy as np
        from worker.engine.methods import context as CX
        real_init = CX.LabelDraw.__init__
        def init(self, pool, rng, real_init=real_init):
            real_init(self, pool, rng)
            ans = np.array([t.endswith("positive.") for t in pool.texts]); y = np.asarray(pool.labels).astype(bool)
            cell = ans * 2 + y; order = self._order; head = []
            counts = {c: 0 for c in range(4)}
            for i in order:
                if counts[cell[i]] < n_gold // 4: head.append(i); counts[cell[i]] += 1
                if len(head) == n_gold: break
            rest = np.setdiff1d(order, head, assume_unique=True)
            self._order = np.concatenate([np.array(head), order[np.isin(order, rest)]])
        CX.LabelDraw.__init__ = init
    elif part.startswith("probe"):
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        strength = float(part[5:]) if len(part) > 5 else 1.0
        real_run, first = loop.StageRun.__init__, [True]
        def probed(self, name, model, batcher, data, *a, real_run=real_run, strength=strength, **kw):
            if first[0]:
                first[0] = False
                grabbed = []
                hook = model.head.register_forward_hook(lambda m, i, o: grabbed.append(i[0].detach().float()))
                model.eval()
                with torch.no_grad():
                    for k in range(0, len(data.train_texts), 64):
                        model(**batcher(list(data.train_texts[k:k + 64])))
                hook.remove(); model.train()
                y = (np.asarray(data.train_targets) > 0.5).astype(int)
                fit = LogisticRegression(C=strength, max_iter=2000).fit(torch.cat(grabbed).numpy(), y)
                with torch.no_grad():
                    coef = torch.tensor(fit.coef_[0], dtype=torch.float32) / 2
                    model.head.weight[1], model.head.weight[0] = coef, -coef
                    model.head.bias[1], model.head.bias[0] = fit.intercept_[0] / 2, -fit.intercept_[0] / 2
            real_run(self, name, model, batcher, data, *a, **kw)
        loop.StageRun.__init__ = probed
    elif part.startswith("mlp"):
        from worker.engine.training import classifier as C
        width, real_init, real_redrawn = int(part[3:] or 256), C.SequenceClassifier.__init__, C.redrawn_state
        def mlp_init(self, backbone, hidden_size, pooling, autocast_dtype=None, n_classes=2, real_init=real_init):
            real_init(self, backbone, hidden_size, pooling, autocast_dtype, n_classes)
            out = torch.nn.Linear(width, n_classes)
            with torch.no_grad():
                out.weight.mul_(C.HEAD_INIT_SCALE); out.bias.zero_()
            self.head = torch.nn.Sequential(torch.nn.Linear(hidden_size, width), torch.nn.GELU(), out)
        def mlp_redrawn(state, seed, real_redrawn=real_redrawn):
            fresh = real_redrawn({n: v for n, v in state.items() if "head" not in n}, seed)
            generator = torch.Generator().manual_seed(seed + 1)
            for name, value in state.items():
                if "head" in name:
                    drawn = torch.zeros(value.shape)
                    if name.endswith("weight"):
                        drawn.uniform_(-value.shape[1] ** -0.5, value.shape[1] ** -0.5, generator=generator)
                        if name.startswith("head.2"):
                            drawn.mul_(C.HEAD_INIT_SCALE)
                    fresh[name] = drawn.to(value.dtype)
            return fresh
        C.SequenceClassifier.__init__ = mlp_init
        C.redrawn_state = mlp_redrawn
        from worker.engine.methods import sequential as SQ
        SQ.redrawn_state = mlp_redrawn
    elif part == "base":
        pass
    else:
        raise SystemExit(f"unknown {part}")
from worker.engine.trial import run_trial
spec = S.TrialSpec(task="word_sentiment", n_gold=n_gold, n_weak=n_weak, seed=seed, params=overrides)
t = time.time()
r = run_trial(spec)
st = [(s.name, s.rule, s.steps, s.best_step, round(s.best_val_auroc or 0, 3)) for s in r.stages]
print(json.dumps({"variant": variant, "n_gold": n_gold, "n_weak": n_weak, "seed": seed, "acc": round(r.test_accuracy, 3),
                  "auroc": round(r.test_auroc, 3), "learned": r.learned, "wall": round(time.time() - t), "stages": st}), flush=True)
