"""Shim for `tamiyo-pareto` from a checkout: `python scripts/pareto.py <compare dir> ... [--out FILE]`."""

from tamiyo.launch.pareto import main

if __name__ == "__main__":
    main()
