"""Building blocks shared by the models: GDN transforms and the cross-attention modules (CAMs).

Transforms (Ballé et al.):
    analysis   x (3) ─ conv5x5/2 ─ GDN ─ conv5x5/2 ─ GDN ─ conv5x5/2 ─ GDN ─ conv5x5/2 ─► M, H/16
    synthesis  4 stages: ConvT5x5/2 + IGDN (x3), then ConvT5x5/2 ─► 3 channels, H

CAMs align decoder features of x (queries) with decoder features of the side image y (keys and
values) at the same scale; their output is concatenated onto the x features.

``BandCAM`` (model ``atn``, any resolution)::

    x_feat (C,h,w) ─ p×p patches ─ LN ─ Linear ─ +pos ─► Q ─┐
    y_feat (C,h,w) ─ p×p patches ─ LN ─ Linear ─ +pos ─► K ─┼─ attention per head over the keys
    y_feat (C,h,w) ─ p×p patches ──────────────────────► V ─┘  in rows r-b..r+b (all columns,
                                                             │  or ±window columns)
                                                             └─► fold ─► aligned y_feat (C,h,w)

    p = 8 / stride, so every scale has one token per 8x8 image pixels; the values are the raw y
    features (no projection), so the module starts as, and stays, a learned warp of y's
    features. Cost: O(H·W²) instead of O((H·W)²): a band of 2b+1 token rows around each query
    row covers stereo disparities along the row and small vertical offsets (±8·b pixels).
    With ``window`` = K > 0 each query sees only key columns within ±K tokens (±8·K pixels),
    plus a learned bias per head, row offset and column offset (a disparity prior that starts
    Gaussian): cost O(H·W·K), linear in the image size. The queries then run in blocks of
    S = 2K columns, each over its block's key columns ±K (the bias masks the rest): products
    big enough to be efficient, at twice the scores of the window itself (4K keys for 2K+1).

``ChannelPatchCAM`` (model ``atn-paper``): the reference code's module, fixed input size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from compressai.layers import GDN
from compressai.models.utils import conv, deconv
from torch import Tensor, nn


def analysis(N: int, M: int, cin: int = 3) -> nn.Sequential:
    return nn.Sequential(conv(cin, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))


def synthesis_stages(cin: list[int], N: int, cout: int = 3) -> nn.ModuleList:
    """Four up-sampling stages; ``cin[i]`` is stage i's input channel count."""
    stages = [nn.Sequential(deconv(cin[i], N), GDN(N, inverse=True)) for i in range(3)]
    return nn.ModuleList([*stages, deconv(cin[3], cout)])


def run_bf16(enabled: bool, module: nn.Module, *inputs: Tensor, keep: bool = False) -> Tensor:
    """``module(*inputs)``, under bf16 autocast when ``enabled`` (CPU or CUDA); returns fp32,
    or with ``keep`` the module's own output dtype (for features that only feed the next
    bf16 stage: converting them to fp32 and back is exact, but costs two copies)."""
    if not enabled:
        return module(*inputs)
    with torch.autocast(inputs[0].device.type, dtype=torch.bfloat16):
        out = module(*inputs)
    return out if keep else out.float()


def sincos(n: int, dim: int, device=None) -> Tensor:
    """n x dim sinusoidal position codes (dim even)."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(
        torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(1e4) / dim)
    )
    pe = torch.zeros(n, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)
    return pe


def _compute_dtype(t: Tensor) -> torch.dtype:
    """The dtype matrix products run in: autocast's where it is on, else ``t``'s."""
    dev = t.device.type
    return torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else t.dtype


def attend(q: Tensor, k: Tensor, v: Tensor, heads: int) -> Tensor:
    """Multi-head attention of q (B, Lq, d) over k (B, Lk, d), values v (B, Lk, dv):
    d and dv are split into ``heads`` groups; returns (B, Lq, dv)."""
    B, Lq, d = q.shape
    Lk, dv = k.shape[1], v.shape[2]
    q = q.view(B, Lq, heads, d // heads).transpose(1, 2)
    k = k.view(B, Lk, heads, d // heads).transpose(1, 2)
    v = v.reshape(B, Lk, heads, dv // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v)
    return out.transpose(1, 2).reshape(B, Lq, dv)


class BandMix(torch.autograd.Function):
    """``out[r] = sum_o a[r][..., o·L:(o+1)·L] @ v[r + o]``: attention weights a (R, X, S, nb·L)
    over nb row offsets of L keys each, values v (R + nb - 1, X, L, dv) padded by the band.

    Autograd of the same products through slices of v allocates, zero-fills and adds a
    gradient the size of all of v per row offset (for atn's 1/2-scale CAM in training, 10 such
    buffers per step, ~0.5 s of a 3.3 s step on 2 cores); this backward writes each slice's
    gradient into one buffer in place."""

    @staticmethod
    def forward(ctx, a: Tensor, v: Tensor, nb: int) -> Tensor:
        R, X, S, _ = a.shape
        L, dv = v.shape[-2:]
        a3 = a.reshape(R * X, S, nb * L)
        out = torch.bmm(a3[..., :L], v[:R].reshape(-1, L, dv))
        for o in range(1, nb):
            out.baddbmm_(a3[..., o * L : (o + 1) * L], v[o : o + R].reshape(-1, L, dv))
        ctx.save_for_backward(a, v)
        ctx.nb = nb
        return out.view(R, X, S, dv)

    @staticmethod
    def backward(ctx, grad: Tensor):
        a, v = ctx.saved_tensors
        nb = ctx.nb
        R, X, S, _ = a.shape
        L, dv = v.shape[-2:]
        g = grad.to(v.dtype).reshape(R * X, S, dv)
        a3 = a.reshape(R * X, S, nb * L)
        ga = torch.empty_like(a3) if ctx.needs_input_grad[0] else None
        gv = torch.zeros_like(v) if ctx.needs_input_grad[1] else None
        for o in range(nb):
            sl = slice(o * L, (o + 1) * L)
            if ga is not None:
                ga[..., sl] = torch.bmm(g, v[o : o + R].reshape(-1, L, dv).transpose(1, 2))
            if gv is not None:
                gv[o : o + R].view(-1, L, dv).baddbmm_(a3[..., sl].transpose(1, 2), g)
        return (ga.view_as(a) if ga is not None else None), gv, None


class BandCAM(nn.Module):
    """Resolution-agnostic cross-attention over a band of token rows (see module docstring)."""

    def __init__(
        self,
        channels: int,
        patch: int,
        dim: int = 128,
        heads: int = 4,
        band: int = 2,
        window: int = 0,
    ):
        super().__init__()
        self.p, self.heads, self.band, self.dim, self.window = patch, heads, band, dim, window
        token = channels * patch * patch
        self.norm_q, self.norm_k = nn.LayerNorm(token), nn.LayerNorm(token)
        self.to_q, self.to_k = nn.Linear(token, dim), nn.Linear(token, dim)
        self.row_offset = nn.Parameter(torch.zeros(2 * band + 1, dim))  # key row - query row
        if window:  # a learned score bias per head, row offset and column offset (-K..K),
            # starting as a Gaussian prior on the offset (sigma K/2; -2 at the window's edge)
            rel = torch.arange(-window, window + 1, dtype=torch.float32)
            prior = -2.0 * (rel / window) ** 2
            self.col_bias = nn.Parameter(prior.expand(heads, 2 * band + 1, -1).clone())
        # Start as a matcher: keys and queries share their initial projection (scaled by 2, so a
        # feature's best match already dominates its band), and D_x and D_y start as the same
        # synthesis transform (models/ndic.py: load_hyperprior), so corresponding places of x
        # and y have similar features and attend to each other before any training.
        with torch.no_grad():
            self.to_q.weight.mul_(2.0)
            self.to_k.load_state_dict(self.to_q.state_dict())
        self.last_attention: Tensor | None = None  # set by forward when ``keep_attention``
        self.keep_attention = False
        self.max_elements = 2**24  # per row chunk: bounds the scores and products
        self.block = 0  # query columns per block when windowed (0: 2·window, fastest measured)

    def _pixel_major(self, f: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, R, p, W, p, C) view of the channels-last layout (a copy only
        if ``f`` is not channels-last)."""
        B, C, h, w = f.shape
        p = self.p
        return f.permute(0, 2, 3, 1).reshape(B, h // p, p, w // p, p, C)

    def _project(self, f: Tensor, norm: nn.LayerNorm, lin: nn.Linear) -> Tensor:
        """``lin(norm(token))`` for every p×p patch token -> (B, R, W, d). A token is defined
        channel-major (C, p, p), as the weights are stored; it is built pixel-major (p, p, C),
        a cheap copy from the channels-last features, with the weights permuted to match."""
        B, C, h, w = f.shape
        p = self.p
        t = self._pixel_major(f).permute(0, 1, 3, 2, 4, 5).reshape(B, h // p, w // p, -1)

        def perm(x: Tensor) -> Tensor:  # (..., C·p·p) channel-major -> pixel-major
            return x.unflatten(-1, (C, p, p)).movedim(-3, -1).flatten(-3)

        t = F.layer_norm(t, t.shape[-1:], perm(norm.weight), perm(norm.bias), norm.eps)
        return F.linear(t, perm(lin.weight), lin.bias)

    def _heads(self, f: Tensor, pad: int) -> Tensor:
        """(B, C, h, w) -> (R + 2·pad, B, heads, W, p·p·C/heads): values per head, pixel-major
        within a token, rows replicated ``pad`` times at both borders (one copy)."""
        B, C, h, w = f.shape
        p, H = self.p, self.heads
        R, W = h // p, w // p
        t = self._pixel_major(f).unflatten(-1, (H, C // H)).permute(1, 0, 5, 3, 2, 4, 6)
        rows = torch.arange(-pad, R + pad, device=f.device).clamp(0, R - 1)
        return torch.index_select(t, 0, rows).reshape(R + 2 * pad, B, H, W, -1)

    def forward(self, fx: Tensor, fy: Tensor, values: Tensor | None = None) -> Tensor:
        """fx's tokens attend to fy's; the output mixes fy's tokens, or those of ``values``
        (any channel count divisible by ``heads``, fy's height and width: e.g. y's pixels)."""
        B, _, h, w = fx.shape
        vsrc = fy if values is None else values
        C = vsrc.shape[1]
        p, H, b = self.p, self.heads, self.band
        R, W, dh = h // p, w // p, self.dim // self.heads
        dt = _compute_dtype(fx)
        col = sincos(W, self.dim, fx.device)
        q = self._project(fx, self.norm_q, self.to_q) + col  # (B, R, W, d)
        k = self._project(fy, self.norm_k, self.to_k) + col
        q = (q * dh**-0.5).view(B, R, W, H, dh).permute(1, 0, 3, 2, 4).to(dt)  # (R, B, H, W, dh)
        v = self._heads(vsrc.to(dt), b)  # (R + 2b, B, H, W, dv)
        out = self._attend(q, k.view(B, R, W, H, dh), v)  # (R, B, H, W, dv)
        # back to the channels-last layout (B, R, p, W, p, H, C/H), as a (B, C, h, w) tensor
        out = out.view(R, B, H, W, p, p, C // H).permute(1, 0, 4, 3, 5, 2, 6).contiguous()
        return out.view(B, h, w, C).permute(0, 3, 1, 2)

    def _blocks(self, W: int) -> tuple[int, int, int]:
        """(S, P, n): queries go in n blocks of S columns; each block's keys are its columns
        plus P on either side. Full rows, or a window wider than the blocks' image: one block
        of all W columns, P = 0."""
        K = self.window
        S = min(W, self.block or 2 * K) if K else W
        n = -(-W // S)
        return S, (K if n > 1 else 0), n

    def _bias(self, W: int, device) -> Tensor:
        """Additive scores of the windowed blocks, (H, n, S, nb·(S+2P)) for (head, block,
        query in block, row offset x key in block): the learned column bias where |key column
        - query column| <= K and the key lies in the image, else -inf. Queries in the padding
        beyond column W (outputs dropped) see every key, so no softmax row is empty."""
        K = self.window
        S, P, n = self._blocks(W)
        j = torch.arange(n, device=device).view(n, 1, 1)
        i = torch.arange(S, device=device).view(1, S, 1)
        t = torch.arange(S + 2 * P, device=device).view(1, 1, -1)
        rel = t - P - i  # key column - query column, (1, S, S+2P)
        key = j * S - P + t  # key column, (n, 1, S+2P)
        ok = (rel.abs() <= K) & (key >= 0) & (key < W) | (j * S + i >= W)  # (n, S, S+2P)
        bias = self.col_bias[:, :, rel.clamp(-K, K) + K]  # (H, nb, 1, S, S+2P)
        bias = bias.permute(0, 2, 3, 1, 4).float()  # (H, 1, S, nb, S+2P)
        bias = bias.masked_fill(~ok[:, :, None], float("-inf"))  # (H, n, S, nb, S+2P)
        return bias.flatten(-2)

    def _attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """q (R, B, H, W, dh) in the compute dtype; k (B, R, W, H, dh); v (R + 2b, B, H, W, dv)
        padded by b rows -> (R, B, H, W, dv).

        Query rows are taken in chunks; query columns in blocks of S (all W for full rows).
        The keys of query row r are y's rows r-b..r+b (clamped at the borders), each plus its
        row offset, over the block's columns ±P: a copy of dim d per band, cheap. The values
        (dim C·p·p/heads, up to 512) are not copied per band: the attention-weighted sum runs
        per row offset o over rows r+o of the padded values (rows first, so a chunk of rows is
        one contiguous slice), accumulated in place."""
        R, B, H, W, dh = q.shape
        b, dv, dt = self.band, v.shape[-1], q.dtype
        nb = 2 * b + 1
        S, P, n = self._blocks(W)
        L, Wq = S + 2 * P, n * S  # keys per block and row offset; padded query columns
        rows = torch.arange(R, device=q.device)
        band = (rows[:, None] + torch.arange(-b, b + 1, device=q.device)).clamp(0, R - 1)
        k = F.pad(k, (0, 0, 0, 0, P, Wq - W + P))[:, band]  # (B, R, nb, Wq + 2P, H, dh)
        k = k + self.row_offset.view(nb, 1, H, dh)
        k = k.unfold(3, L, S).permute(1, 0, 4, 3, 5, 2, 6)  # (R, B, H, n, dh, nb, L)
        k = k.reshape(R, B, H, n, dh, nb * L).to(dt)
        q = F.pad(q, (0, 0, 0, Wq - W)).view(R, B, H, n, S, dh)
        if n == 1 and not P:
            v = v.unsqueeze(3)  # (R + 2b, B, H, 1, W, dv)
        else:  # (R + 2b, B, H, n, L, dv): the values of every block's key columns
            v = F.pad(v, (0, 0, P, Wq - W + P)).unfold(3, L, S).transpose(-1, -2).contiguous()
        bias = self._bias(W, q.device).to(dt) if self.window else None
        if torch.is_grad_enabled() and not self.keep_attention:  # training: all rows at once
            s = torch.matmul(q, k)  # (R, B, H, n, S, nb·L)
            a = (s + bias if bias is not None else s).softmax(-1).to(v.dtype)
            out = BandMix.apply(a.view(R, -1, S, nb * L), v.view(R + 2 * b, -1, L, dv), nb)
            out = out.view(R, B, H, Wq, dv)
            return out if Wq == W else out[:, :, :, :W]
        chunk = max(1, self.max_elements // (B * H * Wq * (nb * L + dv)))
        outs, maps = [], []
        for r0 in range(0, R, chunk):
            m = min(chunk, R - r0)
            s = torch.matmul(q[r0 : r0 + m], k[r0 : r0 + m])  # (m, B, H, n, S, nb·L)
            if bias is not None:
                s = s + bias
            a = s.softmax(-1)
            a3 = a.view(-1, S, nb * L)
            o_ = torch.bmm(a3[..., :L], v[r0 : r0 + m].reshape(-1, L, dv))
            for o in range(1, nb):
                o_.baddbmm_(a3[..., o * L : (o + 1) * L], v[r0 + o : r0 + o + m].reshape(-1, L, dv))
            outs.append(o_.view(m, B, H, Wq, dv)[:, :, :, :W])
            if self.keep_attention:  # head 0's attention map, for `wz visualize`
                a0 = a[:, :, 0].transpose(0, 1).unflatten(-1, (nb, L))  # (B, m, n, S, nb, L)
                maps.append(self._full_map(a0, W))
        if self.keep_attention:
            self.last_attention = torch.cat(maps, 1)  # (B, R, W, 2b+1, W)
        return torch.cat(outs, 0)  # in the compute dtype

    def scores(self, fx: Tensor, fy: Tensor) -> Tensor:
        """The attention logits of every head as a full map (B, H, R, W, 2b+1, W): query
        (row, column) over key (row offset, column), -inf outside the window. The plain,
        memory-hungry form of what ``forward`` computes in blocks, for the matching loss on
        training crops."""
        B, _, h, w = fx.shape
        H, b, d, K = self.heads, self.band, self.dim, self.window
        R, W, dh, nb = h // self.p, w // self.p, self.dim // self.heads, 2 * self.band + 1
        dev = fx.device
        col = sincos(W, d, dev)
        q = (self._project(fx, self.norm_q, self.to_q) + col).view(B, R, W, H, dh) * dh**-0.5
        k = self._project(fy, self.norm_k, self.to_k) + col
        band = torch.arange(R, device=dev)[:, None] + torch.arange(-b, b + 1, device=dev)
        band = band.clamp(0, R - 1)
        k = (k[:, band] + self.row_offset.view(1, 1, nb, 1, d)).view(B, R, nb, W, H, dh)
        s = torch.einsum("brchd,bronhd->bhrcon", q, k)
        if not K:
            return s
        rel = torch.arange(W, device=dev)[None, :] - torch.arange(W, device=dev)[:, None]
        bias = self.col_bias[:, :, rel.clamp(-K, K) + K].permute(0, 2, 1, 3)  # (H, W, nb, W)
        bias = bias.masked_fill(~(rel.abs() <= K)[:, None], float("-inf"))
        return s + bias[None, :, None]

    def match_loss(self, fx: Tensor, fy: Tensor, dk: Tensor, dr: Tensor) -> Tensor:
        """Cross-entropy of every head's attention against known correspondences: sample i's
        query at token (r, c) should attend to y's token (r + dr[i], c + dk[i]) (y a shifted
        copy of x). Queries whose match lies outside y or the window are left out."""
        s = self.scores(fx.float(), fy.float())
        B, H, R, W, nb, _ = s.shape
        dev = s.device
        dk, dr = dk.to(dev).view(B, 1, 1), dr.to(dev).view(B, 1, 1)
        tr = torch.arange(R, device=dev).view(1, R, 1) + dr
        tc = torch.arange(W, device=dev).view(1, 1, W) + dk
        valid = (tr >= 0) & (tr < R) & (tc >= 0) & (tc < W) & (dr.abs() <= self.band)
        if self.window:
            valid &= dk.abs() <= self.window
        target = ((dr + self.band).clamp(0, nb - 1) * W + tc.clamp(0, W - 1)).expand(B, R, W)
        logp = s.flatten(-2).log_softmax(-1)
        nll = -logp.gather(-1, target[:, None, ..., None].expand(B, H, R, W, 1)).squeeze(-1)
        mask = valid.expand(B, R, W)[:, None].expand(B, H, R, W)
        return torch.where(mask, nll, 0.0).sum() / mask.sum().clamp(min=1)

    def _full_map(self, a: Tensor, W: int) -> Tensor:
        """Head 0's attention per block (B, m, n, S, nb, L) laid out as the full-row map
        (B, m, W, nb, W) (zeros outside the window)."""
        B, m, n, S, nb, L = a.shape
        P = (L - S) // 2
        full = a.new_zeros(B, m, n * S, nb, n * S + 2 * P, dtype=torch.float32)
        for j in range(n):
            full[:, :, j * S : (j + 1) * S, :, j * S : j * S + L] = a[:, :, j].float()
        return full[:, :, :W, :, P : P + W]


class ChannelPatchCAM(nn.Module):
    """The reference code's CAM: every channel map is cut into a 4x4 grid of patches, each patch
    one token (C*16 tokens of length (h/4)(w/4)); Linear -> 256, one shared LayerNorm, 8 heads
    of dim 256, dropout 0.1, Linear back. Needs the feature size it was built for."""

    def __init__(
        self,
        channels: int,
        h: int,
        w: int,
        dim: int = 256,
        heads: int = 8,
        head_dim: int = 256,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.h, self.w, self.heads, self.head_dim = h, w, heads, head_dim
        token = (h // 4) * (w // 4)
        self.embed_x, self.embed_y = nn.Linear(token, dim), nn.Linear(token, dim)
        self.norm = nn.LayerNorm(dim)
        inner = heads * head_dim
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, inner, bias=False) for _ in range(3))
        self.out = nn.Sequential(nn.Linear(inner, dim), nn.Dropout(dropout))
        self.unembed = nn.Linear(dim, token)

    def _tokens(self, f: Tensor) -> Tensor:
        B, C, h, w = f.shape
        t = f.reshape(B, C, 4, h // 4, 4, w // 4).permute(0, 1, 2, 4, 3, 5)
        return t.reshape(B, C * 16, (h // 4) * (w // 4))

    def forward(self, fx: Tensor, fy: Tensor, values: Tensor | None = None) -> Tensor:
        """fx's tokens attend to fy's; the output mixes fy's tokens, or those of ``values``
        (any channel count divisible by ``heads``, fy's height and width: e.g. y's pixels)."""
        B, _, h, w = fx.shape
        vsrc = fy if values is None else values
        C = vsrc.shape[1]
        if (h, w) != (self.h, self.w):
            raise ValueError(f"ChannelPatchCAM built for {self.w}x{self.h} features, got {w}x{h}")
        x = self.norm(self.embed_x(self._tokens(fx)))
        y = self.norm(self.embed_y(self._tokens(fy)))
        out = attend(self.to_q(x), self.to_k(y), self.to_v(y), self.heads)
        t = self.unembed(self.out(out))  # (B, C*16, token)
        t = t.reshape(B, C, 4, 4, h // 4, w // 4).permute(0, 1, 2, 4, 3, 5)
        return t.reshape(B, C, h, w)
