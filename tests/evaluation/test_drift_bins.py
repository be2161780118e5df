"""PSI bins of discrete features: thin bins left by ties are merged so noise weighs less."""

from __future__ import annotations

import numpy as np

from evaluation.drift import bin_shares, psi


def _ticket_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """88% zeros, a tail of counts: decile cuts tie at 0 and leave a thin (0, 1] bin."""
    x = np.zeros(n)
    k = rng.random(n) < 0.12
    x[k] = rng.integers(1, 30, int(k.sum()))
    return x


def test_thin_bins_left_by_ties_are_merged():
    rng = np.random.default_rng(0)
    ref, cur = _ticket_like(rng, 20000), _ticket_like(rng, 300)
    raw, _, _ = bin_shares(ref, cur, bins=10, min_bin_share=0.0)
    merged, _, kind = bin_shares(ref, cur, bins=10, min_bin_share=0.05)
    assert kind == "numeric" and (raw[:-1] < 0.05).any()
    assert (merged[:-1] >= 0.05).all() and len(merged) < len(raw)


def test_merging_lowers_sampling_noise_and_a_real_shift_still_alerts():
    rng = np.random.default_rng(1)
    ref = _ticket_like(rng, 20000)
    samples = [_ticket_like(rng, 300) for _ in range(200)]
    noise = {m: np.mean([psi(ref, s, min_bin_share=m) for s in samples]) for m in (0.0, 0.05)}
    assert noise[0.05] < noise[0.0] and noise[0.05] < 0.01
    shifted = _ticket_like(rng, 300)
    shifted[rng.random(300) < 0.3] += 5
    assert psi(ref, shifted, min_bin_share=0.05) >= 0.25
