"""Time the Synthetic generator at full size: 1,000,000 users x 100,000 items x 50,000,000 interactions.

    python experiments/benchmarks/bench_synthetic.py [--users N] [--items N] [--interactions N] [--seed N]

Budget: under 60 s on the project's 2-core machine. Prints the wall time, the rows actually produced
(the interaction count is the expected number of distinct user-item pairs, so it is approximate) and the
peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time

from privrec.data import Synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=50_000_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cfg = Synthetic(n_users=args.users, n_items=args.items, n_interactions=args.interactions, seed=args.seed)
    start = time.perf_counter()
    data = cfg.load()
    seconds = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KiB on Linux
    print(
        f"synthetic {args.users:,} users x {args.items:,} items, target {args.interactions:,} interactions: "
        f"{seconds:.1f} s, {data.n_interactions:,} rows "
        f"({data.n_interactions / args.interactions - 1:+.2%} vs target), peak RSS {peak_gb:.1f} GB"
    )


if __name__ == "__main__":
    main()
