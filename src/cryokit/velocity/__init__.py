"""Glacier velocity: feature tracking of optical pairs and SAR offset tracking of series.

Engine: :mod:`.filters` (pre-filters, outlier tests), :mod:`.correlate` (correlation surfaces,
peaks, Lucas-Kanade refinement), :mod:`.track` (node grid, coarse-to-fine pipeline),
:mod:`.stable` (stable-ground correction). SAR: :mod:`.sar` (log-amplitude, radar directions,
orbit/terrain model), :mod:`.series` (pair networks, cumulative displacement, mean velocity).
Products (I/O at the edges): :mod:`.product` (optical pair), :mod:`.sar_product` (SAR series).
"""
