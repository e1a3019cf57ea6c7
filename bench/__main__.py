"""``python -m bench quick|full|<scenario>...``: run benchmark scenarios and regenerate bench/RESULTS.md."""

from __future__ import annotations

import argparse
import logging
import sys

from bench.harness import FULL, QUICK, SCENARIOS, annotate_overheads, run
from bench.report import regenerate_results_md
from bench.scale import annotate_parse


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the scenarios."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "what",
        nargs="+",
        help=f"quick ({', '.join(QUICK)}), full ({', '.join(FULL)}), report (RESULTS.md only) or scenario names: "
        + ", ".join(SCENARIOS)
        + "; 'overheads NAME...' adds per-pair timings from the last run's task logs to those results; "
        + "'parse' measures the DAG parse again into P4",
    )
    parser.add_argument("--baseline-only", action="store_true", help="skip the product (no Airflow stack)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every step of the baseline")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for progress in ("bench.harness", "bench.ours"):  # the scenarios and the stack's steps; the baseline's with -v
        logging.getLogger(progress).setLevel(logging.INFO)
    for noisy in ("azure", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.what[0] == "parse":
        print(annotate_parse())
        return 0
    if args.what[0] == "overheads":
        for name in args.what[1:]:
            print(annotate_overheads(name))
        return 0
    names: list[str] = []
    for item in args.what:
        if item == "quick":
            names += QUICK
        elif item == "full":
            names += FULL
        elif item == "report":
            continue
        elif item in SCENARIOS:
            names.append(item)
        else:
            parser.error(f"unknown scenario {item!r}")
    if not names:
        print(regenerate_results_md())
        return 0
    for path in run(list(dict.fromkeys(names)), with_ours=not args.baseline_only):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
