"""Fakes at the boundary: small servers on 127.0.0.1 that speak the real protocols."""
