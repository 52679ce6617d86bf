"""EGMS ground-motion points: read and write every release, per-point statistics, re-referencing,
GNSS calibration, Ortho (L3) decomposition, release comparison and plots."""
