#!/usr/bin/env python3
"""Generates tests/fixtures/mann_whitney.json: Mann-Whitney U cases judged by scipy.

Each case holds the canary and baseline samples, the alternative, and what
scipy.stats.mannwhitneyu(canary, baseline, alternative=..., method="auto") answers.
The fixtures are committed so the Rust tests need no Python; rerun this after
changing the cases (pip install scipy numpy).
"""
import json
import pathlib

import numpy as np
import scipy
from scipy.stats import mannwhitneyu

rng = np.random.default_rng(20261122)
ALTERNATIVES = ["greater", "less", "two-sided"]

# (canary size, baseline size): exact territory (one side <= 8), the boundary, and large.
SIZES = [
    (3, 3), (3, 4), (4, 3), (3, 8), (8, 3), (5, 5), (6, 7), (8, 8), (8, 9), (9, 8),
    (4, 40), (40, 4), (7, 300), (3, 5000), (9, 9), (12, 10), (20, 20), (30, 45),
    (100, 100), (250, 180), (1000, 1000), (5000, 5000),
]


def sample(n, shift, ties):
    values = rng.normal(loc=100.0 + shift, scale=10.0, size=n)
    if ties:
        return np.round(values / 5.0) * 5.0  # coarse buckets: many ties
    return np.round(values, 6)


def case(canary, baseline, alternative, label):
    result = mannwhitneyu(canary, baseline, alternative=alternative, method="auto")
    return {
        "label": label,
        "alternative": alternative,
        "canary": [float(v) for v in canary],
        "baseline": [float(v) for v in baseline],
        "u": float(result.statistic),
        "pValue": float(result.pvalue),
    }


def main():
    cases = []
    for n1, n2 in SIZES:
        for ties in (False, True):
            shift = float(rng.choice([0.0, 2.0, 5.0, 15.0]))
            canary, baseline = sample(n1, shift, ties), sample(n2, 0.0, ties)
            for alternative in ALTERNATIVES:
                label = f"{n1}v{n2} ties={ties} shift={shift}"
                cases.append(case(canary, baseline, alternative, label))
    # Random sizes across the range, log-uniform, half of them with ties.
    for index in range(30):
        n1, n2 = (int(round(np.exp(rng.uniform(np.log(3), np.log(2000))))) for _ in range(2))
        ties, shift = index % 2 == 1, float(rng.uniform(0.0, 8.0))
        canary, baseline = sample(n1, shift, ties), sample(n2, 0.0, ties)
        for alternative in ALTERNATIVES:
            cases.append(case(canary, baseline, alternative, f"random {n1}v{n2} ties={ties}"))
    # Degenerate shapes a canary judge meets: constant and all-zero baselines.
    zeros, constant = np.zeros(12), np.full(10, 0.2)
    worse = np.concatenate([np.zeros(6), np.full(6, 0.5)])
    for alternative in ALTERNATIVES:
        cases.append(case(worse, zeros, alternative, "all-zero baseline"))
        cases.append(case(np.full(10, 0.5), constant, alternative, "constant baseline"))
    path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/mann_whitney.json"
    path.write_text(json.dumps({"scipy": scipy.__version__, "cases": cases}, separators=(",", ":")))
    print(f"{len(cases)} cases written to {path}")


if __name__ == "__main__":
    main()
