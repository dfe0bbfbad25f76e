"""Shim for `tamiyo-compare` from a checkout: `python scripts/compare.py ...` (options: conf/compare.yaml)."""

from tamiyo.launch.compare import main

if __name__ == "__main__":
    main()
