"""Shim for `tamiyo-evaluate` from a checkout: `python scripts/evaluate.py ...` (options: conf/evaluate.yaml)."""

from tamiyo.launch.evaluate import main

if __name__ == "__main__":
    main()
