"""tamiyo: learning morphogenetic training controllers with recurrent PPO."""

__version__ = "0.1.0"
