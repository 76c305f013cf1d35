"""Weight files: the shipped ``.safetensors`` + ``.json`` pairs, read and written.

    training checkpoint (.pt) ──► export ──► save_weights ──► <name>.safetensors (fp16 params,
                                                              entropy tables) + <name>.json
                                                              (model, config, base reference)
    <name>.safetensors ──► fp32_state + with_base(base_weights) ──► a model's state dict

A file trained over a frozen base (``dsin`` over the hyperprior, ``ndic`` over ``atn``)
references the base by name and sha256 instead of copying it (``save_weights(base=...)``);
loading completes it from the base (``with_base``) and refuses a base that changed. Scripts
that graft or compare weights use ``load_weights`` and ``save_weights`` from here.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load as st_load

from wzcodec import catalog
from wzcodec.errors import WzError
from wzcodec.files import atomic_open
from wzcodec.models import build
from wzcodec.models.base import ENTROPY_TABLES


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from shipped weights (.safetensors) or a training checkpoint (.pt)."""
    path = Path(path)
    if path.suffix == ".safetensors":
        meta = path.with_suffix(".json")
        spec = json.loads(meta.read_text()).get("base") if meta.exists() else None
        return with_base(fp32_state(path.read_bytes()), base_weights(path, spec), spec or {})
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def fp32_state(blob: bytes, prefix: str = "") -> dict[str, torch.Tensor]:
    """A state dict from safetensors bytes, floating tensors as fp32, keys under ``prefix``."""
    return {prefix + k: v.float() if v.is_floating_point() else v for k, v in st_load(blob).items()}


def with_base(
    state: dict[str, torch.Tensor], base: bytes | None, spec: dict
) -> dict[str, torch.Tensor]:
    """A weights file's tensors completed by its frozen base's. ``spec`` (the ``.json``'s
    ``base`` entry): ``prefix``, where the base's tensors go (``"base."``, the default: a
    model that holds its base as a submodule, as ``dsin``); ``take``, which of them (name
    prefixes; default all), for a model that shares parts with its base under the same names
    (``ndic`` over ``atn``). The file's own tensors win."""
    if base is None:
        return state
    prefix, take = spec.get("prefix", "base."), tuple(spec.get("take", ("",)))
    shared = {
        k: v for k, v in fp32_state(base, prefix).items() if k[len(prefix) :].startswith(take)
    }
    return shared | state


def base_weights(path: Path, base: dict | None) -> bytes | None:
    """The frozen base a weights file was trained over (its .json names the file and hash)."""
    if not base:
        return None
    base_path = path.parent / base["file"]
    if not base_path.exists():
        raise WzError(f"{path}: its base weights {base_path} are missing")
    blob = base_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != base["sha256"]:
        raise WzError(
            f"{path} was trained over another {base['file']} (sha256 differs); "
            "train or export it again over these base weights"
        )
    return blob


def save_weights(
    model: torch.nn.Module,
    out_dir: str | Path,
    name: str,
    meta: dict | None = None,
    fp16: bool = True,
    base: str | Path | None = None,
) -> Path:
    """Write ``<name>.safetensors`` + ``<name>.json`` (model name and config) atomically.

    Entropy-coder tables are computed here (``update``) and shipped, so every machine decodes
    with the same CDFs. Parameters are stored as fp16 when ``fp16`` (rounded *before* the tables
    are built, so tables and weights agree); buffers and tables keep their dtype.
    """
    from safetensors.torch import save

    params = {n for n, _ in model.named_parameters()}
    if fp16:
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    model.update(force=True)
    tensors = {
        k: (v.half() if fp16 and k in params else v).contiguous()
        for k, v in model.state_dict().items()
    }
    out_dir = Path(out_dir)
    meta = {"model": model.model_name, "config": model.config, **(meta or {})}
    if base is not None:  # a frozen base is referenced, not copied
        base = Path(base)
        if base.parent.resolve() != out_dir.resolve():
            raise WzError(f"base weights {base} must sit in {out_dir} (copy it there first)")
        base_blob = base.read_bytes()
        tensors, spec = _leave_out_base(tensors, base_blob, base)
        meta["base"] = {
            "file": base.name,
            "sha256": hashlib.sha256(base_blob).hexdigest(),
            **spec,
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.safetensors"
    with atomic_open(path) as f:
        f.write(save(tensors, metadata={"model": model.model_name}))
    with atomic_open(out_dir / f"{name}.json") as f:
        f.write(json.dumps(meta, indent=2).encode())
    return path


def _leave_out_base(
    tensors: dict[str, torch.Tensor], base_blob: bytes, base: Path
) -> tuple[dict[str, torch.Tensor], dict]:
    """The tensors a file over ``base`` keeps, and its ``.json`` ``base`` entry (see
    ``with_base``). A model holding its base as ``base.`` (dsin) must match all of it;
    otherwise every top-level part (``e_x``, ``latent`` ...) equal to the base's part of the
    same name is left out (ndic or atn-paper over atn: their frozen encoders)."""
    from safetensors.torch import load

    theirs = load(base_blob)
    if any(k.startswith("base.") for k in tensors):
        mine = {k[5:]: v for k, v in tensors.items() if k.startswith("base.")}
        if mine.keys() != theirs.keys() or not _same_weights(mine, theirs):
            raise WzError(f"the model's base. weights differ from {base}")
        return {k: v for k, v in tensors.items() if not k.startswith("base.")}, {}
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in tensors.items():
        parts.setdefault(k.split(".", 1)[0] + ".", {})[k] = v
    take = sorted(
        p
        for p, mine in parts.items()
        if mine.keys() <= theirs.keys() and _same_weights(mine, theirs)
    )
    if not take:
        raise WzError(f"no part of the model is the same as {base}'s")
    kept = {k: v for k, v in tensors.items() if not k.startswith(tuple(take))}
    return kept, {"prefix": "", "take": take}


def _same_weights(mine: dict[str, torch.Tensor], theirs: dict[str, torch.Tensor]) -> bool:
    # The entropy tables are the base file's at load time (the referencing file leaves them
    # out); ``update`` here may rebuild them a few ulps apart (exp() of the scale table differs
    # between CPUs), so only the weights must match.
    tables = (*ENTROPY_TABLES, "scale_table")
    return all(
        mine[k].shape == theirs[k].shape and torch.equal(mine[k].to(theirs[k].dtype), theirs[k])
        for k in mine
        if not k.endswith(tables)
    )


def export(
    checkpoint: str | Path,
    out_dir: str | Path,
    name: str | None = None,
    fp16: bool = True,
    base: str | Path | None = None,
) -> Path:
    """Shipping weights from a training checkpoint (see ``save_weights``). ``base``: the
    weights file of a frozen base (a ``dsin`` run's ``init_from``), referenced, not copied."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    cfg = state["config"]
    model = build(cfg["model"], **cfg.get("model_config", {}))
    model.load_state_dict(state["model"])
    meta = {"step": state["step"], "distortion": cfg.get("distortion", "mse")}
    if "lambdas" in cfg:
        meta["lambdas"] = cfg["lambdas"]
    entry = catalog.entry(cfg["model"])
    if entry.kind == "receiver":  # which base codecs it was trained on
        meta["bases"] = cfg.get("bases", [entry.base])
    name = name or entry.weights_name
    return save_weights(model, out_dir, name, meta, fp16, base)
