"""An offline implicit-feedback ALS (PyPI `implicit`, CPU) on the prefix `eddy eval` warms
up with, scored on the same held-out trials, for the table `eddy eval` prints.

The protocol is eval's (Sources/eddy/PrequentialEvaluation.swift): events sorted by event
time (ties in file order); the first `warm_up` share is the prefix; each later event whose
type is an interaction and whose item the user has not had an event with before is a
trial, scored on the top 20 before the event is seen; users with events in the prefix are
warm. The model is frozen after the prefix (that is the point of the row: a model that
keeps learning from the stream should beat it); only the set of items a user has seen
grows, and seen items are never recommended. Cold users have no factors: they get the
prefix's most counted items (the "popularity (count)" row's answer).

Tuning, inside the prefix only: its first 90% trains, its last 10% are trials scored the
same way; the grid's best HR@20 (warm) picks factors, regularization and alpha (the
confidence of a weighted interaction), then the model is trained on the whole prefix.
Interactions weigh as recs.yaml's popularity does (view 1, click 3, cart 5, purchase 10),
summed per user and item.

Usage: python3 Benchmarks/offline_als.py EVENTS.jsonl [--warm-up 0.9] [--json]
(Benchmarks/offline-als installs `implicit` into tools/implicit and runs this.)"""
import argparse
import json
import math
import sys
import time

import numpy as np
import scipy.sparse as sparse
from implicit.als import AlternatingLeastSquares

WEIGHTS = {"view": 1.0, "click": 3.0, "cart": 5.0, "purchase": 10.0}
GRID = {"factors": [32, 64, 128], "regularization": [0.01, 0.1, 1.0], "alpha": [1.0, 10.0, 40.0]}
ITERATIONS = 15
K = 20


def load(path):
    events = []
    with open(path) as f:
        for n, line in enumerate(f):
            e = json.loads(line)
            events.append((e["ts"], n, e["user_id"], e["item_id"], e["event_type"]))
    events.sort()
    return [(u, i, t) for _, _, u, i, t in events]


class Quality:
    """HR and NDCG at 10 and 20, as RankingQuality."""

    def __init__(self):
        self.trials = 0
        self.hits = {10: 0, 20: 0}
        self.gains = {10: 0.0, 20: 0.0}

    def add(self, recommended, actual):
        self.trials += 1
        if actual not in recommended:
            return
        p = recommended.index(actual)
        for k in (10, 20):
            if p < k:
                self.hits[k] += 1
                self.gains[k] += 1 / math.log2(p + 2)

    def row(self):
        t = max(self.trials, 1)
        return [self.hits[10] / t, self.hits[20] / t, self.gains[10] / t, self.gains[20] / t]


def train(prefix, factors, regularization, alpha):
    users = {u: n for n, u in enumerate(sorted({u for u, _, t in prefix if t in WEIGHTS}))}
    items = {i: n for n, i in enumerate(sorted({i for _, i, t in prefix if t in WEIGHTS}))}
    cells = {}
    for u, i, t in prefix:
        if t in WEIGHTS:
            cells[(users[u], items[i])] = cells.get((users[u], items[i]), 0.0) + WEIGHTS[t]
    rows, cols = zip(*cells.keys())
    matrix = sparse.csr_matrix((alpha * np.array(list(cells.values()), dtype=np.float32), (rows, cols)),
                               shape=(len(users), len(items)))
    model = AlternatingLeastSquares(factors=factors, regularization=regularization, iterations=ITERATIONS,
                                    random_state=7, use_gpu=False)
    model.fit(matrix, show_progress=False)
    user_factors = np.asarray(model.user_factors)
    item_factors = np.asarray(model.item_factors)
    return users, items, user_factors, item_factors


def score(prefix, held_out, model):
    users, items, user_factors, item_factors = model
    item_names = sorted(items, key=items.get)
    counts = {}
    seen, warm_users = {}, set()
    for u, i, t in prefix:
        seen.setdefault(u, set()).add(i)
        warm_users.add(u)
        if t in WEIGHTS:
            counts[i] = counts.get(i, 0) + 1
    popular = sorted(counts, key=lambda i: (-counts[i], i))
    warm, cold = Quality(), Quality()
    for u, i, t in held_out:
        user_seen = seen.setdefault(u, set())
        if t in WEIGHTS and i not in user_seen:
            if u in users:
                scores = item_factors @ user_factors[users[u]]
                ranked = [item_names[n] for n in np.argsort(-scores, kind="stable")[: K + len(user_seen)]]
            else:
                ranked = popular[: K + len(user_seen)]
            recommended = [r for r in ranked if r not in user_seen][:K]
            (warm if u in warm_users else cold).add(recommended, i)
        user_seen.add(i)
    return warm, cold


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("events")
    parser.add_argument("--warm-up", type=float, default=0.9)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    start = time.time()
    events = load(args.events)
    split = int(len(events) * args.warm_up)
    prefix, held_out = events[:split], events[split:]

    inner = int(len(prefix) * 0.9)
    best = None
    for factors in GRID["factors"]:
        for regularization in GRID["regularization"]:
            for alpha in GRID["alpha"]:
                warm, _ = score(prefix[:inner], prefix[inner:], train(prefix[:inner], factors, regularization, alpha))
                hr20 = warm.row()[1]
                print(f"validation: factors {factors}, regularization {regularization}, alpha {alpha}: HR@20 {hr20:.4f}",
                      file=sys.stderr)
                if best is None or hr20 > best[0]:
                    best = (hr20, factors, regularization, alpha)
    _, factors, regularization, alpha = best
    warm, cold = score(prefix, held_out, train(prefix, factors, regularization, alpha))
    name = f"offline ALS (implicit; factors {factors}, reg {regularization}, alpha {alpha:g})"
    if args.json:
        print(json.dumps({"method": name, "warm": {"trials": warm.trials, "quality": warm.row()},
                          "cold": {"trials": cold.trials, "quality": cold.row()}}))
        return
    print(f"offline ALS over {args.events}: {split} prefix events, {len(held_out)} held out, tuned on the prefix's last 10%, "
          f"in {time.time() - start:.0f} s")
    print("| method | users | trials | HR@10 | HR@20 | NDCG@10 | NDCG@20 |")
    print("|---|---|---|---|---|---|---|")
    for users, q in (("warm", warm), ("cold (prefix popularity)", cold)):
        print(f"| {name} | {users} | {q.trials} | " + " | ".join(f"{v:.4f}" for v in q.row()) + " |")


if __name__ == "__main__":
    main()
