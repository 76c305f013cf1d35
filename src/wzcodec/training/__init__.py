"""Training: ``wz train`` and ``wzcodec.training.train``.

    config.py       every config key and its default; checks; the learning-rate schedule
    params.py       the model a config trains: warm start, frozen parts, optimizers
    data.py         batches (resumable), side-image curricula, matching loss, validation crops
    loop.py         train(): picks the trainer; the end-to-end models' step (rate-distortion
                    loss, DDP)
    refiner.py      the patch-matching receiver's trainer (align: match / cam / both)
    flow.py         the flow receiver's trainer (precomputed alignments, held-out pairs)
    steps.py        the one loop skeleton all three plug into (lr schedule, log, validation
                    cadence, checkpoints, signals, exact resume)
    base_decodes.py the receivers' cache of base decodes, and their image helpers
    gate.py         the receivers' rate gate, fitted after training
    validate.py     validation: bpp, PSNR, and the PSNR lost with an unrelated or no y
    checkpoint.py   atomic checkpoints with every random state (exact resume), clean stops
    log.py          log.csv and TensorBoard
    distributed.py  torchrun / DDP plumbing

Weight files (``wz export``) are ``wzcodec.weights``'.
"""

from wzcodec.training.config import check_config, load_config
from wzcodec.training.loop import train

__all__ = ["check_config", "load_config", "train"]
