"""Training data (``training/data.py``): side-image curricula and shifted copies."""

from __future__ import annotations

import os

import torch

ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def test_side_curriculum_replaces_y_by_a_shifted_relit_x_with_probability_p():
    from wzcodec.training.data import easy_side

    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 3, 16, 32), torch.rand(6, 3, 16, 32)
    assert torch.equal(easy_side(x, y, 0.0, 8, gen), y)  # p = 0: the real side images
    out = easy_side(x, y, 1.0, 0, gen)  # p = 1, no shift: x with a gain and an offset
    for i in range(6):
        a, b = x[i].flatten(), out[i].flatten()
        inside = (b > 0) & (b < 1)
        slope = (
            torch.linalg.lstsq(
                torch.stack([a[inside], torch.ones_like(a[inside])], 1), b[inside, None]
            )
            .solution[0]
            .item()
        )
        assert 0.85 <= slope <= 1.15
    shifted = easy_side(x, y, 1.0, 4, torch.Generator().manual_seed(1))
    again = easy_side(x, y, 1.0, 4, torch.Generator().manual_seed(1))
    assert torch.equal(shifted, again)  # drawn from the run's checkpointed generator
    assert not torch.allclose(shifted, y)


def test_shifted_copies_move_x_by_the_tokens_they_return():
    from wzcodec.training.data import shifted_copies

    gen = torch.Generator().manual_seed(0)
    x = 0.3 + 0.4 * torch.rand(6, 3, 64, 96)  # no clamping after gain and offset
    y, dk, dr = shifted_copies(x, 32, gen)
    assert dk.abs().max() <= 4 and dr.abs().max() <= 1 and len(set(dk.tolist())) > 1
    for i in range(6):
        back = y[i].roll((-8 * int(dr[i]), -8 * int(dk[i])), dims=(-2, -1))
        a, b = x[i].flatten() - x[i].mean(), back.flatten() - back.mean()
        assert (a @ b) / (a.norm() * b.norm()) > 0.9999  # the same picture, relit
