"""What a task's gold labels can teach a probe on the frozen model: a linear probe against a small
perceptron, on mean-pooled features, by the number of labels.

    PYTHONPATH=. OMP_NUM_THREADS=1 python scripts/frozen_probe.py [--task word_sentiment] [--sizes 64,205,1000,3000] [--seeds 3]

word_sentiment's label is an XOR: "The word X is positive/negative." is true when the word's
polarity matches the one shown. A linear head on pooled features cannot express that, a perceptron
can, if the features hold both polarities. The script embeds the task's pool and test once with the
packaged model (no adapter, fp32), then fits scikit-learn's LogisticRegression and MLPClassifier to
n labels drawn from the pool per seed, and prints test accuracy and AUROC. Research, not product:
docs/benchmarks.md ("Engine and recipes") reports what it found.
"""
import argparse

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.neural_network import MLPClassifier
from transformers import AutoModel, AutoTokenizer

from worker.engine.models import resolve_model
from worker.engine.tasks import get_task

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--task", default="word_sentiment")
parser.add_argument("--model", default="minilm-l6")
parser.add_argument("--sizes", default="64,205,1000,3000", help="labels a probe fits, comma-separated")
parser.add_argument("--seeds", type=int, default=3)
args = parser.parse_args()
torch.set_num_threads(1)
resolved = resolve_model(args.model)
tokenizer = AutoTokenizer.from_pretrained(resolved.path)
model = AutoModel.from_pretrained(resolved.path).eval()
task = get_task(args.task)


def embed(texts) -> np.ndarray:
    out = []
    with torch.no_grad():
        for i in range(0, len(texts), 128):
            batch = tokenizer(list(texts[i:i + 128]), padding=True, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            out.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())  # the engine's mean pooling
    return np.concatenate(out)


pool_x, pool_y = embed(task.pool.texts), np.asarray(task.pool.labels)
test_x, test_y = embed(task.test.texts), np.asarray(task.test.labels)
print(f"{args.task}, {args.model} frozen, mean-pooled; {len(test_y)} test examples; accuracy (AUROC)")
print("labels  seed  linear probe    perceptron (64)  perceptron (256)")
for n in (int(s) for s in args.sizes.split(",")):
    for seed in range(args.seeds):
        rows = np.random.default_rng(seed).choice(len(pool_y), n, replace=False)
        cells = []
        for probe in (LogisticRegression(max_iter=2000),
                      MLPClassifier((64,), alpha=1e-3, max_iter=2000, random_state=seed),
                      MLPClassifier((256,), alpha=1e-3, max_iter=2000, random_state=seed)):
            scores = probe.fit(pool_x[rows], pool_y[rows]).predict_proba(test_x)[:, 1]
            cells.append(f"{((scores > 0.5) == test_y).mean():.3f} ({roc_auc_score(test_y, scores):.3f})")
        print(f"{n:6d}  {seed:4d}  " + "  ".join(f"{c:15s}" for c in cells), flush=True)
