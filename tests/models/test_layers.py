"""The attention layers (``models/layers.py``): BandCAM against a dense reference, its
gradients, windows and scores, the matching loss, ChannelPatchCAM."""

from __future__ import annotations

import pytest
import torch

from wzcodec.models.layers import BandCAM, ChannelPatchCAM, attend


def test_attention_is_invariant_to_permuting_keys_with_their_values():
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 7, 16), torch.randn(2, 11, 16), torch.randn(2, 11, 24)
    perm = torch.randperm(11)
    assert torch.allclose(attend(q, k, v, 4), attend(q, k[:, perm], v[:, perm], 4), atol=1e-5)


def test_paper_cam_is_invariant_to_permuting_y_tokens():
    torch.manual_seed(0)
    cam = ChannelPatchCAM(8, 16, 32, dim=32, heads=2, head_dim=16).eval()
    fx, fy = torch.randn(1, 8, 16, 32), torch.randn(1, 8, 16, 32)
    perm = torch.randperm(8)  # tokens are per-channel patches: permuting channels permutes tokens
    assert torch.allclose(cam(fx, fy), cam(fx, fy[:, perm]), atol=1e-5)


def _band_reference(cam: BandCAM, fx, fy):
    """Dense attention, one query at a time, over the keys of its band's rows (within +-window
    columns when windowed, plus the learned column bias): the definition."""
    p = cam.p

    def tokens(f):  # (B, C, h, w) -> (B, h/p, w/p, C·p·p), channel-major within a token
        B, C, h, w = f.shape
        t = f.reshape(B, C, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return t.reshape(B, h // p, w // p, C * p * p)

    tx, ty = tokens(fx), tokens(fy)
    B, R, W, _ = tx.shape
    from wzcodec.models.layers import sincos

    col = sincos(W, cam.dim)
    q = cam.to_q(cam.norm_q(tx)) + col
    k = cam.to_k(cam.norm_k(ty)) + col
    H, dh, K = cam.heads, cam.dim // cam.heads, cam.window
    out = torch.zeros(B, R, W, ty.shape[-1])
    for r in range(R):
        for c in range(W):
            scores, values = [], []
            for o, dr in enumerate(range(-cam.band, cam.band + 1)):
                j = min(max(r + dr, 0), R - 1)
                cols = range(W) if not K else range(max(0, c - K), min(W, c + K + 1))
                for c2 in cols:
                    kk = (k[:, j, c2] + cam.row_offset[o]).view(B, H, dh)
                    sc = (q[:, r, c].view(B, H, dh) * kk).sum(-1) / dh**0.5
                    if K:
                        sc = sc + cam.col_bias[:, o, c2 - c + K]
                    scores.append(sc)
                    values.append(ty[:, j, c2].view(B, H, -1))
            att = torch.stack(scores, -1).softmax(-1)  # (B, H, keys)
            out[:, r, c] = torch.einsum("bhk,bkhd->bhd", att, torch.stack(values, 1)).flatten(1)
    C = fx.shape[1]
    return out.reshape(B, R, W, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, C, R * p, W * p)


@pytest.mark.parametrize("window", [0, 2, 3, 20])
def test_band_cam_matches_dense_reference_and_chunks_or_blocks_change_nothing(window):
    torch.manual_seed(0)
    cam = BandCAM(8, patch=2, dim=16, heads=2, band=1, window=window)
    with torch.no_grad():
        cam.row_offset.normal_()
        if window:
            cam.col_bias.normal_()
    fx, fy = torch.randn(1, 8, 12, 22), torch.randn(1, 8, 12, 22)  # 11 token columns
    ref = _band_reference(cam, fx, fy)

    def both(cam):  # inference (row chunks) and training (all rows, BandMix) paths
        with torch.no_grad():
            yield cam(fx, fy)
        yield cam(fx, fy)

    assert all(torch.allclose(out, ref, atol=1e-5) for out in both(cam))
    cam.max_elements = 1  # one query row per chunk
    assert all(torch.allclose(out, ref, atol=1e-5) for out in both(cam))
    for block in (1, 3, 4):  # query columns per block (windowed): 11, 4 or 3 blocks
        cam.block = block
        assert all(torch.allclose(out, ref, atol=1e-5) for out in both(cam))


@pytest.mark.parametrize("window, block", [(0, 0), (2, 3)])
def test_band_cam_gradients_match_the_dense_reference(window, block):
    """The training path's hand-written backward (``BandMix``) gives autograd's gradients
    of the definition, for both feature maps and every parameter."""
    torch.manual_seed(0)
    cam = BandCAM(8, patch=2, dim=16, heads=2, band=1, window=window).double()
    cam.block = block
    with torch.no_grad():
        cam.row_offset.normal_()
    fx = torch.randn(1, 8, 8, 14, dtype=torch.float64, requires_grad=True)
    fy = torch.randn(1, 8, 8, 14, dtype=torch.float64, requires_grad=True)
    w = torch.randn(1, 8, 8, 14, dtype=torch.float64)
    params = [fx, fy, *cam.parameters()]
    got = torch.autograd.grad((cam(fx, fy) * w).sum(), params)
    torch.set_default_dtype(torch.float64)  # the reference builds fp32 outputs otherwise
    try:
        want = torch.autograd.grad((_band_reference(cam, fx, fy) * w).sum(), params)
    finally:
        torch.set_default_dtype(torch.float32)
    for g, r in zip(got, want, strict=True):
        assert torch.allclose(g, r, atol=1e-9)


def test_band_mix_backward_passes_gradcheck():
    from wzcodec.models.layers import BandMix

    torch.manual_seed(0)
    nb, L = 3, 4
    a = torch.rand(5, 2, 3, nb * L, dtype=torch.float64, requires_grad=True)
    v = torch.randn(5 + nb - 1, 2, L, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, v: BandMix.apply(a, v, nb), (a, v))


def test_windowed_band_cam_ignores_y_beyond_its_window():
    torch.manual_seed(0)
    cam = BandCAM(4, patch=1, dim=8, heads=2, band=0, window=3)
    fx, fy = torch.randn(1, 4, 2, 16), torch.randn(1, 4, 2, 16)
    out = cam(fx, fy)
    fy2 = fy.clone()
    fy2[..., 10:] = torch.randn(1, 4, 2, 6)  # columns 10.. are beyond the window of columns 0..6
    assert torch.equal(cam(fx, fy2)[..., :7], out[..., :7])
    assert not torch.allclose(cam(fx, fy2)[..., 7:], out[..., 7:])


@pytest.mark.parametrize("window, block", [(0, 0), (3, 0), (2, 3)])
def test_band_cam_attention_rows_sum_to_one(window, block):
    cam = BandCAM(8, patch=1, dim=16, heads=2, band=2, window=window)
    cam.block = block
    cam.keep_attention = True
    cam(torch.randn(1, 8, 6, 10), torch.randn(1, 8, 6, 10))
    att = cam.last_attention  # (B, R, W, 2b+1, W)
    assert torch.allclose(att.flatten(3).sum(-1), torch.ones(1, 6, 10), atol=1e-5)


def test_band_cam_copies_a_shifted_feature_map_when_keys_say_so():
    """With keys equal to queries (identity projections and strong features), the module
    rebuilds x's features from a horizontally shifted y: the alignment it exists for."""
    torch.manual_seed(0)
    cam = BandCAM(4, patch=1, dim=4, heads=1, band=0)
    with torch.no_grad():
        for lin in (cam.to_q, cam.to_k):
            lin.weight.copy_(torch.eye(4) * 30)
            lin.bias.zero_()
        for ln in (cam.norm_q, cam.norm_k):
            ln.weight.fill_(1.0)
    base = torch.randn(1, 4, 3, 40)
    fx, fy = base[..., 5:35], base[..., 8:38]  # y is x shifted by 3 columns
    out = cam(fx, fy)
    assert (out[..., 3:] - fx[..., 3:]).abs().mean() < 0.25 * (fy - fx).abs().mean()


@pytest.mark.parametrize("window", [0, 3])
def test_band_cam_scores_are_the_logits_of_the_attention_forward_uses(window):
    torch.manual_seed(0)
    cam = BandCAM(8, patch=2, dim=16, heads=2, band=1, window=window)
    fx, fy = torch.randn(2, 8, 8, 20), torch.randn(2, 8, 8, 20)
    cam.keep_attention = True
    with torch.no_grad():
        cam(fx, fy)
        s = cam.scores(fx, fy)  # (B, H, R, W, 2b+1, W)
    att = s.flatten(-2).softmax(-1).view_as(s)[:, 0]  # head 0, as last_attention keeps it
    assert torch.allclose(att, cam.last_attention, atol=1e-5)


def test_match_loss_is_the_cross_entropy_at_the_shifted_token():
    torch.manual_seed(0)
    cam = BandCAM(4, patch=1, dim=8, heads=2, band=1, window=4)
    fx, fy = torch.randn(2, 4, 3, 10), torch.randn(2, 4, 3, 10)
    dk, dr = torch.tensor([2, -5]), torch.tensor([1, 0])  # sample 1: beyond the window
    logp = cam.scores(fx, fy).flatten(-2).log_softmax(-1)  # (B, H, R, W, 3 x W)
    terms = [
        -logp[0, h, r, c, (1 + 1) * 10 + c + 2]
        for h in range(2)
        for r in range(3)
        for c in range(10)
        if r + 1 < 3 and c + 2 < 10
    ]
    expected = torch.stack(terms).mean()
    assert torch.allclose(cam.match_loss(fx, fy, dk, dr), expected, atol=1e-5)
    fy.requires_grad_(False)
    cam.match_loss(fx, fy, dk, dr).backward()
    assert cam.to_q.weight.grad.abs().sum() > 0 and cam.col_bias.grad.abs().sum() > 0


def test_match_loss_teaches_a_cam_to_find_shifted_features():
    torch.manual_seed(0)
    cam = BandCAM(8, patch=1, dim=16, heads=2, band=1, window=6)
    opt = torch.optim.Adam(cam.parameters(), lr=3e-2)

    def batch():
        base = torch.randn(4, 8, 4, 30)
        dk = torch.randint(-4, 5, (4,))
        fy = torch.stack([b.roll(int(k), dims=-1) for b, k in zip(base, dk, strict=True)])
        return base, fy + 0.3 * torch.randn_like(fy), dk, torch.zeros(4, dtype=torch.long)

    def accuracy() -> float:
        fx, fy, dk, _ = batch()
        with torch.no_grad():
            best = cam.scores(fx, fy)[:, :, :, :, 1].argmax(-1)  # own row: (B, H, R, W)
        target = (torch.arange(30).view(1, 1, 1, 30) + dk.view(4, 1, 1, 1)) % 30
        ok = (torch.arange(30) + dk.view(4, 1) >= 0) & (torch.arange(30) + dk.view(4, 1) < 30)
        return (best == target)[ok.view(4, 1, 1, 30).expand_as(best)].float().mean().item()

    before = accuracy()
    for _ in range(60):
        loss = cam.match_loss(*batch())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert accuracy() > max(0.9, before + 0.2)  # measured: 0.46 -> 0.99
