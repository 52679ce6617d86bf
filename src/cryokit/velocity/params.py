"""Parameters of the velocity engine and their defaults, importable without the engine (the
command line shows them in its help without loading numba)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass

import math

PREFILTERS = ("none", "highpass", "wallis")
MATCHERS = ("ncc", "oc")


@dataclass(frozen=True)
class TrackParams:
    """Settings of the feature tracker (pixels unless stated).

    chip : template size (even). step : node spacing. search : largest displacement searched
    per axis. prefilter : 'none', 'highpass' (Gaussian, ``sigma``) or 'wallis'
    (``wallis_window``). matcher : 'ncc' (normalised cross-correlation) or 'oc' (orientation
    correlation). max_nodata : largest nodata fraction of a template that is still matched.
    coarse_factor : decimation of the coarse pass, used when ``search > fine_search``.
    fine_search : search radius of the fine pass around the coarse or prior offset.
    min_peak, min_snr : correlation peak and peak/mean(|surface|) below which a node is invalid.
    median_threshold, median_eps : normalised median test (Westerweel & Scarano 2005).
    fill_gaps : fill isolated invalid nodes from their neighbours (flagged in ``filled``).
    lk_iterations, lk_window : Lucas-Kanade sub-pixel iterations, and the std of its Gaussian
        weighting window as a fraction of the chip (None: flat). The window weights the chip
        centre, where the node's displacement is defined, so strain across the chip (shear
        margins) biases it less: 0.3 cut the synthetic-glacier RMSE from 0.070 to 0.055 px while
        keeping the stable NMAD of the real Yahtse pair below 0.07 px.
    lk_narrow, lk_switch : strain-adaptive window. Each node is refined again with the narrower
        window ``lk_narrow``; where the two estimates differ by more than ``lk_switch`` px the
        chip is strained (a uniform shift gives the same answer under any window, up to noise)
        and the narrow estimate, less biased by the strain, is kept. Elsewhere the wide window,
        less noisy, is kept. None disables the second pass.
    gap_chip_factor : nodes whose chip or search area touches nodata (SLC-off stripes, scene
        edges) and that fail with ``chip`` are matched again with larger chips, as autoRIFT does
        with its progressive chip sizes: 1.5x, then 2x, ... up to this factor, each try only on
        the nodes still unmatched, so a node gets the smallest chip (least smoothing of strain)
        that works. 1 disables it. The valid-pixel fractions a larger chip needs shrink by the
        area ratio, so it needs as many valid pixels as a normal chip; SLC-off wedges near the
        scene edges leave 40-60 % gaps in both images. The sub-pixel step of these nodes, and of
        the normal-chip nodes that touch nodata, pre-filters both images on the pixels valid in
        both (see :func:`_gap_fallback`), which removes the gap-edge bias of the pre-filter.
    gap_max_sigma : a node matched with a chip ``f`` times larger is kept only where its
        Lucas-Kanade standard error (px) is at most ``gap_max_sigma / f``: the standard error of
        a pure shift falls as 1/f with the chip's side, while the strain a larger chip averages
        over does not show in it, so larger chips must meet a tighter bound. 0.18 kept 94.5 % /
        91.2 % of the moving nodes of the synthetic SLC-off scenes (768², 1024²) valid at RMSE
        0.092 / 0.069 px.
    oversample : chips (both images) are interpolated to this many times finer pixels before
        correlation and refinement (cubic spline); 2 is the usual choice for detected SAR
        intensities, whose spectrum is twice as wide as the complex signal's. Costs ~f^2.
    speckle_lowpass, speckle_switch : speckle-aware second pass. Every node is matched again
        on images low-passed by a Gaussian of ``speckle_lowpass`` px before the pre-filter
        (and refined with the wide window only); where its correlation peak exceeds
        ``speckle_switch`` times the first pass's (or the first pass failed), its estimate is
        kept. Where the fine scales are incoherent speckle (fast ice, few looks) the low-pass
        raises the peak several fold (x2.7-4 on 4-10-look ice at coherence 0.1) and the
        estimate is less noisy; where they are signal (coherent speckle on rock, crevasses,
        50 looks) the peak rises by less than 2 and the sharper first pass stays. None disables.
    threads : threads for matching inside one process.
    """

    chip: int = 40
    step: int = 16
    search: int = 32
    prefilter: str = "highpass"
    sigma: float = 1.5
    wallis_window: int = 21
    matcher: str = "ncc"
    max_nodata: float = 0.5
    coarse_factor: int = 4
    fine_search: int = 4
    min_peak: float = 0.15
    min_snr: float = 1.0
    median_threshold: float = 3.0
    median_eps: float = 0.15
    fill_gaps: bool = False
    lk_iterations: int = 4
    lk_window: float | None = 0.3
    lk_narrow: float | None = 0.15
    lk_switch: float = 1.5
    gap_chip_factor: float = 2.5
    gap_max_sigma: float = 0.18
    oversample: int = 1
    speckle_lowpass: float | None = None
    speckle_switch: float = 2.0
    threads: int = min(2, os.cpu_count() or 1)

    def __post_init__(self):
        if self.chip < 8 or self.chip % 2:
            raise ValueError(f"chip must be an even number >= 8, got {self.chip}")
        if self.step < 1:
            raise ValueError(f"step must be >= 1, got {self.step}")
        if self.gap_chip_factor < 1:
            raise ValueError(f"gap_chip_factor must be >= 1, got {self.gap_chip_factor}")
        if self.search < 1:
            raise ValueError(f"search must be >= 1, got {self.search}")
        if self.prefilter not in PREFILTERS:
            raise ValueError(f"prefilter must be one of {PREFILTERS}, got {self.prefilter!r}")
        if not 0 <= self.max_nodata < 1:
            raise ValueError(f"max_nodata must be in [0, 1), got {self.max_nodata}")
        if not (self.min_snr >= 0 and math.isfinite(self.min_snr)):
            raise ValueError(f"min_snr must be a finite number >= 0, got {self.min_snr}")
        if self.speckle_lowpass is not None and not self.speckle_lowpass > 0:
            raise ValueError(f"speckle_lowpass must be > 0 or None, got {self.speckle_lowpass}")
        if not self.speckle_switch >= 1:
            raise ValueError(f"speckle_switch must be >= 1, got {self.speckle_switch}")
        if self.matcher not in MATCHERS:
            raise ValueError(f"matcher must be one of {MATCHERS}, got {self.matcher!r}")

    def as_dict(self) -> dict:
        return asdict(self)


# Sentinel-1 IW GRD at 20 m: speckle needs larger chips and lower peak thresholds than optical
# texture. A chip of 64 px (1.3 km) keeps the stable residual NMAD under 0.1 px for 4-look
# amplitudes at coherence 0.7 on the synthetic series. The high-pass only removes illumination
# (sigma 16 px): glacier texture carries most of its gradient energy at scales a sigma-3
# high-pass removes, and white speckle dominates the scales it keeps. The speckle pass
# low-passes by 1 px where speckle is incoherent (docs/BENCHMARKS.md, SAR offset tracking).
# max_nodata 0.4 keeps the first node row and column (37.5 % of their chip off the image,
# 40 x 64 px still matched) that 0.3 dropped: 92 % instead of 89.7 % of the real EW pair.
SAR_DEFAULTS = TrackParams(chip=64, step=16, search=24, prefilter="highpass", sigma=16.0,
                           min_peak=0.08, min_snr=1.0, max_nodata=0.4, lk_window=0.35,
                           speckle_lowpass=1.0)
