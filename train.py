"""Run tamiyo from a checkout: `python train.py policy=lstm precision=bf16`."""

from tamiyo.cli import main

if __name__ == "__main__":
    main()
