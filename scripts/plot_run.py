"""Shim for `tamiyo-plot` from a checkout: `python scripts/plot_run.py <run_dir> [--out DIR]`."""

from tamiyo.launch.plot import main

if __name__ == "__main__":
    main()
