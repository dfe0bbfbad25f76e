"""Run tamiyo from a checkout: `python train.py policy=lstm precision=bf16` (same as `tamiyo-train`)."""

from tamiyo.launch.train import main

if __name__ == "__main__":
    main()
