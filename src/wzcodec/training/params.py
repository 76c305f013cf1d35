"""The model a config trains: built, warm-started, partly frozen, and its optimizers.

cfg ──► build(model, model_config) ──► init_model(init_from) ──► param_groups ──► Adam, aux Adam
"""

from __future__ import annotations

import torch

from wzcodec.errors import WzError
from wzcodec.models import build
from wzcodec.models.compiled import compile_transforms
from wzcodec.models.dsin import DSIN
from wzcodec.models.ndic import NDIC
from wzcodec.weights import load_weights

# parameters a config option adds to a model (``window`` adds ``col_bias``): a warm start from
# the same model without the option keeps their initial value and trains them as new ones
NEW_PARAMETERS = {"col_bias"}


def build_model(cfg: dict) -> torch.nn.Module:
    """The model of a resolved config, with its training switches set (not yet warm-started
    or moved to the device); refuses options the model cannot take."""
    model = build(cfg["model"], **cfg["model_config"])
    cams = model.cams or []
    if cfg["match_loss"] and not (cams and all(hasattr(c, "match_loss") for c in cams)):
        raise WzError(f"match_loss: {cfg['model']} has no band attention to train")
    crop = cfg["crop"]
    if any(c % model.factor for c in ([crop, crop] if isinstance(crop, int) else crop)):
        raise ValueError(f"crop {crop} must be a multiple of the model's factor {model.factor}")
    model.bf16 = bool(cfg["bf16"])
    ndic = isinstance(model, NDIC)  # NDIC and its descendants: a common-information branch
    if ndic:  # ŷ, R_y and R_w only feed the loss's α and β terms
        model.decode_y = bool(cfg["alpha"] or cfg["beta"])
    if cfg["coarse_latent"]:
        if not ndic:
            raise WzError(f"coarse_latent: {cfg['model']} has no side path to train")
        model.coarse_latent = dict(cfg["coarse_latent"])
    return model


def init_model(model: torch.nn.Module, init_from: str | None) -> set[str]:
    """Warm start from ``init_from``: a trained ``hyperprior`` (mapped by the model's
    ``load_hyperprior``) or weights of the same model. Returns the parameter names loaded."""
    if not init_from:
        return set()
    state = load_weights(init_from)
    if isinstance(model, NDIC | DSIN) and any(k.startswith("g_a.") for k in state):
        return model.load_hyperprior(state)
    missing, unexpected = model.load_state_dict(state, strict=False)
    new = [k for k in missing if k.rsplit(".", 1)[-1] in NEW_PARAMETERS]
    if unexpected or len(new) != len(missing):
        model.load_state_dict(state)  # raises, naming what does not match
    return {n for n, _ in model.named_parameters() if n not in new}


def freeze_input_channels(model: torch.nn.Module, spec: dict[str, int]) -> None:
    """Keep the first ``n`` input channels of each named convolution weight as they are
    (``{name: n}``; the rest trains): their gradient is zeroed, so Adam never moves them. With
    a grafted ``atn`` this trains only the weights that read y while D_x's x path stays the
    hyperprior's, like ControlNet's zero convolutions."""
    params = dict(model.named_parameters())
    convs = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    for name, n in spec.items():
        module = model.get_submodule(name.rsplit(".", 1)[0]) if name in params else None
        if not name.endswith(".weight") or not isinstance(module, convs):
            raise WzError(f"freeze_input_channels: {name} is not a convolution weight")
        dim = 0 if isinstance(module, torch.nn.ConvTranspose2d) else 1  # its weight: (in, out, ..)
        mask = torch.ones_like(params[name])
        mask.narrow(dim, 0, int(n)).zero_()
        params[name].register_hook(lambda g, mask=mask: g * mask)


def param_groups(
    model: torch.nn.Module,
    warm: set[str],
    *,
    freeze: list[str] = (),
    lr_mult: dict[str, float] | None = None,
    side_lr_mult: float = 1.0,
):
    """Main-optimizer groups (warm-started parameters at lr, new ones at lr x side_lr_mult;
    ``lr_mult: {prefix: m}`` sets lr x m for the names starting with prefix, the longest
    prefix winning; names starting with a ``freeze`` prefix are not trained) and the aux
    parameters. The keywords are the config keys of the same names."""
    frozen = tuple(freeze)
    by_prefix = lr_mult or {}
    names = {n for n, _ in model.named_parameters()}
    for prefix in by_prefix:
        if not any(n.startswith(prefix) for n in names):
            raise WzError(f"lr_mult: no parameter name starts with {prefix!r}")
    groups: dict[float, list] = {}
    aux = []
    for n, p in model.named_parameters():
        if frozen and n.startswith(frozen):
            p.requires_grad_(False)
        elif n.endswith(".quantiles"):
            aux.append(p)
        else:
            mult = 1.0 if (not warm or n in warm) else float(side_lr_mult)
            hits = [k for k in by_prefix if n.startswith(k)]
            if hits:
                mult = float(by_prefix[max(hits, key=len)])
            groups.setdefault(mult, []).append(p)
    main = [{"params": ps, "lr_mult": m} for m, ps in groups.items()]
    return main, aux


def prepare(cfg: dict, device: torch.device):
    """The model of a resolved config, warm-started and on ``device``, with its main and aux
    Adam (``lr_mult`` per group) and the main parameters (for gradient clipping)."""
    model = build_model(cfg)
    warm = init_model(model, cfg["init_from"])
    model = model.to(device, memory_format=torch.channels_last)
    if cfg["compile"]:
        compile_transforms(model)
    freeze_input_channels(model, cfg["freeze_input_channels"])
    keys = ("freeze", "lr_mult", "side_lr_mult")
    groups, aux_params = param_groups(model, warm, **{k: cfg[k] for k in keys})
    # fused: one kernel per step instead of ~10 per tensor (~4% of a hyperprior step on CPU)
    opt = torch.optim.Adam(groups, lr=cfg["lr"], fused=True)
    aux_opt = torch.optim.Adam(aux_params, lr=cfg["aux_lr"], fused=True) if aux_params else None
    return model, opt, aux_opt, [p for g in groups for p in g["params"]]
