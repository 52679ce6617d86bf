"""Small-baseline (SBAS) inversion of unwrapped interferograms to EGMS-style points: network,
per-pixel least squares, temporal coherence, the product."""
