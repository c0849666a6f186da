"""``gadm-synth``: write a GADM-shaped sample and print its statistics."""

from __future__ import annotations

import argparse
import json
import sys

from .build import LAYOUTS, generate
from .dirt import DirtRates


def main(argv: list[str] | None = None) -> int:
    d = DirtRates()
    p = argparse.ArgumentParser(prog="gadm-synth", description=__doc__)
    p.add_argument("--scale", type=float, required=True,
                   help="fraction of GADM 4.1's feature counts (1.0 = about 400k)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", choices=LAYOUTS, default="levels")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--zip", action="store_true", help="also write GADM-style zips")
    p.add_argument("--png", help="also render levels 0-2 to this PNG file")
    p.add_argument("--workers", type=int, help="processes (default: up to 4)")
    p.add_argument("--invalid-rate", type=float, default=d.invalid)
    p.add_argument("--polygon-rate", type=float, default=d.polygon)
    p.add_argument("--na-rate", type=float, default=d.na)
    p.add_argument("--null-rate", type=float, default=d.null)
    a = p.parse_args(argv)
    dirt = DirtRates(invalid=a.invalid_rate, polygon=a.polygon_rate,
                     na=a.na_rate, null=a.null_rate)
    stats = generate(a.out, scale=a.scale, seed=a.seed, layout=a.layout,
                     zip=a.zip, dirt=dirt, workers=a.workers, png=a.png)
    json.dump(stats, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
