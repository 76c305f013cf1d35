"""Training commands: ``wz train`` and ``wz export``."""

from __future__ import annotations

from pathlib import Path

from wzcodec.errors import WzError


def cmd_train(a) -> int:
    import yaml

    from wzcodec.training import train

    overrides = {}
    for item in a.set or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise WzError(f"--set takes KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    if a.device:
        overrides["device"] = a.device

    train(
        a.config,
        a.out or Path("runs") / Path(a.config).stem,
        resume=a.resume,
        max_steps=a.max_steps,
        max_minutes=a.max_minutes,
        overrides=overrides,
    )
    return 0


def cmd_export(a) -> int:
    from wzcodec.weights import export

    path = export(a.checkpoint, a.out, name=a.name, fp16=not a.fp32, base=a.base)
    print(f"wrote {path} and {path.with_suffix('.json')}")
    return 0


def add_parsers(sub) -> None:
    t = sub.add_parser("train", help="train a model from a YAML config")
    t.add_argument("--config", required=True)
    t.add_argument("--out", help="run folder (default runs/<config name>)")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--max-steps", type=int)
    t.add_argument("--max-minutes", type=float)
    t.add_argument("--device", help="cpu (default) or cuda; same as --set device=...")
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a top-level config key (YAML value), e.g. --set crop=128",
    )
    t.set_defaults(func=cmd_train)

    x = sub.add_parser(
        "export", help="write shipping weights (safetensors + json) from a checkpoint"
    )
    x.add_argument("checkpoint")
    x.add_argument("--out", default="src/wzcodec/weights")
    x.add_argument("--name")
    x.add_argument(
        "--base",
        help="weights file of a frozen base to reference instead of copying: dsin's "
        "hyperprior, or a model whose frozen parts are the base's (ndic or atn-paper over atn)",
    )
    x.add_argument("--fp32", action="store_true", help="keep fp32 (default stores fp16)")
    x.set_defaults(func=cmd_export)
