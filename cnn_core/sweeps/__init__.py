"""Sweeps: many runs at once on Ray Tune, from this machine to a cluster, every trial an ordinary run."""
