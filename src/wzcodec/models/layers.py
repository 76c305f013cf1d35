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
    Gaussian): cost O(H·W·K), linear in the image size.

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
        self.max_elements = 2**24  # per row chunk: bounds the gathered keys/values and scores

    def _tokens(self, f: Tensor) -> Tensor:
        """(B, C, h, w) -> (B, h/p, w/p, C*p*p), channel-major within a token."""
        B, C, h, w = f.shape
        p = self.p
        t = f.reshape(B, C, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)
        return t.reshape(B, h // p, w // p, C * p * p)

    def _fold(self, t: Tensor, C: int) -> Tensor:
        B, R, W, _ = t.shape
        p = self.p
        return t.reshape(B, R, W, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(B, C, R * p, W * p)

    def _heads(self, f: Tensor, pad: int) -> Tensor:
        """(B, C, h, w) -> (B, R + 2·pad, heads, W, C·p·p/heads): each token split into heads
        (channel-major, as ``_tokens``), rows replicated ``pad`` times at both borders."""
        B, C, h, w = f.shape
        p, H = self.p, self.heads
        R = h // p
        t = f.reshape(B, H, C // H, R, p, w // p, p).permute(0, 3, 1, 5, 2, 4, 6)
        rows = torch.arange(-pad, R + pad, device=f.device).clamp(0, R - 1)
        t = torch.index_select(t, 1, rows)  # one copy: padding and layout together
        return t.reshape(B, R + 2 * pad, H, w // p, C * p * p // H)

    def forward(self, fx: Tensor, fy: Tensor) -> Tensor:
        B, C, h, w = fx.shape
        p, H, b = self.p, self.heads, self.band
        R, W, dh = h // p, w // p, self.dim // self.heads
        dt = _compute_dtype(fx)
        col = sincos(W, self.dim, fx.device)
        q = self.to_q(self.norm_q(self._tokens(fx))) + col  # (B, R, W, d)
        k = self.to_k(self.norm_k(self._tokens(fy))) + col
        # Per head. The keys of query row r are y's rows r-b..r+b (clamped at the borders),
        # each plus its row offset: a band of (2b+1)·W keys, cheap to copy (dim d). The values
        # (dim C·p·p, up to 2048) are not copied per band: they are padded by b rows once, and
        # the attention-weighted sum runs per offset o over rows r+o of the padded values.
        nb = 2 * b + 1
        q = (q * dh**-0.5).view(B, R, W, H, dh).transpose(2, 3).to(dt)  # (B, R, H, W, dh)
        v = self._heads(fy.to(dt), b)  # (B, R + 2b, H, W, dv)
        if self.window:
            rows = torch.arange(-b, R + b, device=fx.device).clamp(0, R - 1)
            out = self._attend_window(q, k.view(B, R, W, H, dh)[:, rows].to(dt), v)
        else:
            rows = torch.arange(R, device=fx.device)
            band = (rows[:, None] + torch.arange(-b, b + 1, device=fx.device)).clamp(0, R - 1)
            k = k.view(B, R, W, H, dh)[:, band] + self.row_offset.view(nb, 1, H, dh)
            k = k.permute(0, 1, 4, 2, 3, 5).reshape(B, R, H, nb * W, dh).to(dt)
            out = self._attend_rows(q, k, v)
        out = out.reshape(B, R, H, W, C // H, p, p).permute(0, 2, 4, 1, 5, 3, 6)
        return out.reshape(B, C, h, w)

    def _attend_rows(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Every query attends to all columns of its band's rows: q (B, R, H, W, dh),
        k (B, R, H, nb·W, dh), padded v (B, R + 2b, H, W, dv) -> (B, R, H, W, dv)."""
        B, R, H, W, _ = q.shape
        nb = 2 * self.band + 1
        chunk = max(1, self.max_elements // (B * H * W * (nb * W + v.shape[-1])))
        outs, maps = [], []
        for r0 in range(0, R, chunk):
            n = min(chunk, R - r0)
            s = torch.matmul(q[:, r0 : r0 + n], k[:, r0 : r0 + n].transpose(-1, -2))
            a = s.softmax(-1)  # (B, n, H, W, nb·W): over the band
            o_ = sum(
                torch.matmul(a[..., o * W : (o + 1) * W], v[:, r0 + o : r0 + o + n])
                for o in range(nb)
            )
            outs.append(o_)
            if self.keep_attention:  # head 0's attention map, for `wz visualize`
                maps.append(a[:, :, 0].unflatten(-1, (nb, W)))
        if self.keep_attention:
            self.last_attention = torch.cat(maps, 1)  # (B, R, W, 2b+1, W)
        return torch.cat(outs, 1)  # in the compute dtype

    def _window_bias(self, W: int, G: int, device) -> Tensor:
        """Additive scores of the windowed layout (see ``_attend_window``), shape
        (H, G, K, nb, 3, K) for (head, block slot, query in block, row offset, block shift -1/0/1,
        key in block): the learned column bias where |key column - query column| <= K and the
        key lies in the image, else -inf; 0 for the two empty slots (never read)."""
        K = self.window
        slot = torch.arange(G, device=device).view(G, 1, 1, 1)
        i = torch.arange(K, device=device).view(1, K, 1, 1)
        shift = torch.arange(-1, 2, device=device).view(1, 1, 3, 1)
        t = torch.arange(K, device=device).view(1, 1, 1, K)
        rel = shift * K + t - i  # key column - query column, (1, K, 3, K)
        key_col = (slot - 1 + shift) * K + t  # (G, 1, 3, K)
        empty = (slot == 0) | (slot == G - 1)  # (G, 1, 1, 1)
        ok = (rel.abs() <= K) & (key_col >= 0) & (key_col < W) | empty  # (G, K, 3, K)
        bias = self.col_bias[:, :, rel.clamp(-K, K) + K]  # (H, nb, 1, K, 3, K)
        bias = bias.permute(0, 2, 3, 1, 4, 5).float()  # (H, 1, K, nb, 3, K)
        bias = bias.masked_fill(empty[:, :, None], 0.0)  # (H, G, K, nb, 3, K)
        return bias.masked_fill(~ok[:, :, None], float("-inf"))

    @staticmethod
    def _grid(t: Tensor, K: int, G: int, rows: int, lead: int = 0, tail: int = 0) -> Tensor:
        """(B, H, r, W, d) -> (lead + B·H·rows·G + tail, K, d): per (batch, head), ``rows``
        rows of G slots of K columns; the image's columns fill slots 1..G-2, the rest is 0."""
        B, H, r, W, d = t.shape
        buf = t.new_zeros(lead + B * H * rows * G + tail, K, d)
        grid = buf[lead : lead + B * H * rows * G].view(B, H, rows, G * K, d)
        grid[:, :, :r, K : K + W] = t
        return buf

    def _attend_window(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Every query attends to the band's rows within ±K columns (K = ``window`` tokens):
        cost linear in the image size. q (B, R, H, W, dh); k (B, R + 2b, W, H, dh) and v
        (B, R + 2b, H, W, dv), both padded by b rows -> (B, R, H, W, dv).

        Layout: every (batch, head) is a grid of R + 2b rows of G = ceil(W/K) + 2 slots, each
        slot K columns, flattened into one axis of slots. The keys of the queries in slot f at
        row offset o (0..2b) and block shift s (-1, 0, 1) are then slot f + o·G + s of the key
        grid, for every f at once: 3·(2b+1) batched products over one contiguous slice each;
        the values are copied once, into the grid, not per shift. A bias masks keys beyond ±K
        columns or outside the image, so the result equals the sliding-window definition."""
        B, R, H, W, dh = q.shape
        K, b, nb, dv = self.window, self.band, 2 * self.band + 1, v.shape[-1]
        G, Rp = -(-W // K) + 2, R + 2 * b
        X, tail = Rp * G, 2 * b * G + 2
        qg = self._grid(q.transpose(1, 2), K, G, Rp)  # (B·H·X, K, dh)
        kg = self._grid(k.permute(0, 3, 1, 2, 4), K, G, Rp, lead=1, tail=tail)
        vg = self._grid(v.transpose(1, 2), K, G, Rp, lead=1, tail=tail)
        # the row offset adds q·row_offset[o] to every score at row offset o
        qo = torch.einsum("brhwd,ohd->bhrwo", q.float(), self.row_offset.view(nb, H, dh))
        qo = self._grid(qo, K, G, Rp).view(B, H, X, K, nb)
        bias = self._window_bias(W, G, q.device)
        shifts = [o * G + s for o in range(nb) for s in (-1, 0, 1)]
        per_batch = H * X * K * (len(shifts) * K + dv)
        chunk = max(1, self.max_elements // per_batch)
        outs, maps = [], []
        for b0 in range(0, B, chunk):
            lo, hi = b0 * H * X, min(B, b0 + chunk) * H * X
            n = (hi - lo) // (H * X)
            s = torch.cat(
                [torch.bmm(qg[lo:hi], kg[1 + d + lo : 1 + d + hi].transpose(1, 2)) for d in shifts],
                -1,
            ).float()  # (n·H·X, K, nb·3·K)
            s = s.view(n, H, Rp, G, K, nb, 3, K) + bias[:, None]
            s = s + qo[b0 : b0 + n].view(n, H, Rp, G, K, nb, 1, 1)
            a = s.view(-1, K, len(shifts) * K).softmax(-1).to(q.dtype)
            o_ = sum(
                torch.bmm(a[:, :, j * K : (j + 1) * K], vg[1 + d + lo : 1 + d + hi])
                for j, d in enumerate(shifts)
            )
            o_ = o_.view(n, H, Rp, G * K, dv)[:, :, :R, K : K + W]
            outs.append(o_.transpose(1, 2))  # (n, R, H, W, dv)
            if self.keep_attention:
                maps.append(self._full_map(a.view(n, H, Rp, G, K, nb, 3, K)[:, 0, :R], W))
        if self.keep_attention:
            self.last_attention = torch.cat(maps, 0)
        return torch.cat(outs, 0)

    def _full_map(self, a: Tensor, W: int) -> Tensor:
        """Head 0's windowed attention (B, R, G, K, nb, 3, K) laid out as the full-row map
        (B, R, W, nb, W) that ``wz visualize`` reads (zeros outside the window)."""
        B, R, G, K, nb, _, _ = a.shape
        full = a.new_zeros(B, R, G * K, nb, (G + 2) * K, dtype=torch.float32)
        for j in range(1, G - 1):  # query slot j: key columns of slots j-1..j+1
            blk = a[:, :, j].float().reshape(B, R, K, nb, 3 * K)
            full[:, :, j * K : (j + 1) * K, :, j * K : (j + 3) * K] = blk
        return full[:, :, K : K + W, :, 2 * K : 2 * K + W]


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

    def forward(self, fx: Tensor, fy: Tensor) -> Tensor:
        B, C, h, w = fx.shape
        if (h, w) != (self.h, self.w):
            raise ValueError(f"ChannelPatchCAM built for {self.w}x{self.h} features, got {w}x{h}")
        x = self.norm(self.embed_x(self._tokens(fx)))
        y = self.norm(self.embed_y(self._tokens(fy)))
        out = attend(self.to_q(x), self.to_k(y), self.to_v(y), self.heads)
        t = self.unembed(self.out(out))  # (B, C*16, token)
        t = t.reshape(B, C, 4, 4, h // 4, w // 4).permute(0, 1, 2, 4, 3, 5)
        return t.reshape(B, C, h, w)
