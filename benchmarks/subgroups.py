"""Break recorded evaluations down by lesion class and size, after the fact.

``rdanet-gan evaluate`` prints this breakdown and writes it as ``subgroups.json``; this reads the
``summary.json`` of evaluations made before it did (per-image rows included), one table each:

    python benchmarks/subgroups.py eval-validation/summary.json eval-test/summary.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rdanet_gan.errors import RdanetError
from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.evaluation.subgroups import subgroup_markdown, subgroup_scores


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summaries", type=Path, nargs="+", help="summary.json files written by 'rdanet-gan evaluate --out'")
    args = parser.parse_args(argv)
    try:
        tables = [f"{path}:\n\n{subgroup_markdown(subgroup_scores(Evaluation.read_json(path)))}" for path in args.summaries]
    except RdanetError as error:
        print(f"subgroups: error: {error}", file=sys.stderr)
        return 2
    print("\n\n".join(tables))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
