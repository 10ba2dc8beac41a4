"""liqbot: crypto liquidation summaries, alerts and digests for chat communities."""

__version__ = "0.1.0"
