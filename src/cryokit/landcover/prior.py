"""Class-prior correction: per-class weights on the probabilities so that the predicted class
frequencies match the training ones (:func:`prior_weights`, ``--prior train``).

A classifier trained with class weights (``balance``) over-predicts rare classes; one trained
without them under-predicts them (the arg-max favours the majority where classes overlap).
:func:`prior_weights` finds one multiplicative weight per class such that the arg-max of
``proba * w`` reproduces a target class distribution on a set of out-of-fold probabilities
(the training samples' own, from cross-validation), in the spirit of the threshold-moving /
prior-adjustment methods of Saerens et al. (2002).  The weights are fixed at training time,
so prediction stays pixel-wise (block-safe) and costs one multiplication.
"""

from __future__ import annotations

import numpy as np


def prior_weights(proba: np.ndarray, target: np.ndarray, iters: int = 200,
                  step: float = 0.5) -> np.ndarray:
    """Per-class weights (K,) that make the arg-max frequencies of ``proba * w`` match
    ``target``.

    Multiplicative fixed-point iteration ``w_k *= (target_k / freq_k) ** (step 0.98^it)``
    (frequencies smoothed by one sample), keeping the weights with the smallest total absolute frequency
    error seen; weights are scaled to a geometric mean of 1.

    Parameters
    ----------
    proba : ndarray (n, K)
        Class probabilities of samples (out-of-fold, not in-sample: in-sample probabilities
        of a forest are nearly certain and leave nothing to correct).
    target : ndarray (K,)
        Wanted class frequencies (any scale; normalised here).

    Examples
    --------
    Class 1 is predicted for 30 % of the samples but makes up 10 % of them:

    >>> rng = np.random.default_rng(0)
    >>> p1 = rng.uniform(0, 0.7, 1000); p = np.stack([1 - p1, p1], axis=1)
    >>> round(float((p.argmax(1) == 1).mean()), 2)
    0.3
    >>> w = prior_weights(p, np.array([0.9, 0.1]))
    >>> round(float(((p * w).argmax(1) == 1).mean()), 2)
    0.1
    """
    proba = np.asarray(proba, np.float64)
    n, k = proba.shape
    target = np.asarray(target, np.float64)
    if target.shape != (k,) or n == 0:
        raise ValueError("target needs one frequency per column of a non-empty proba")
    target = target / target.sum()
    w = np.ones(k)
    best_err, best = np.inf, w.copy()
    for it in range(iters):
        freq = np.bincount(np.argmax(proba * w, axis=1), minlength=k) / n
        err = float(np.abs(freq - target).sum())
        if err < best_err:
            best_err, best = err, w.copy()
        if err == 0:
            break
        # damped: the arg-max frequencies are step functions of w, a fixed step oscillates
        w = w * ((target + 1.0 / n) / (freq + 1.0 / n)) ** (step * 0.98 ** it)
        w = w / np.exp(np.log(w).mean())
    return best


def apply_prior(proba: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """``proba * weights`` renormalised to sum 1 per row (float32); ``weights`` None: as is.

    Examples
    --------
    >>> apply_prior(np.array([[0.6, 0.4]]), np.array([1.0, 2.0]))
    array([[0.4285714 , 0.57142854]], dtype=float32)
    """
    proba = np.asarray(proba, np.float32)
    if weights is None:
        return proba
    q = proba * np.asarray(weights, np.float32)
    s = q.sum(axis=1, keepdims=True)
    return np.where(s > 0, q / np.where(s > 0, s, 1), proba).astype(np.float32)
