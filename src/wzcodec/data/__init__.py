"""Paired-image data: sources (``pairs``) and protocols / transforms (``protocols``)."""

from wzcodec.data.pairs import (
    Pair,
    PairDataset,
    cityscapes,
    frame_pairs,
    from_spec,
    kitti_general,
    kitti_stereo,
    photos,
    stereo_folder,
)
from wzcodec.data.protocols import PROTOCOLS, TrainTransform, paper_view

__all__ = [
    "PROTOCOLS",
    "Pair",
    "PairDataset",
    "TrainTransform",
    "cityscapes",
    "frame_pairs",
    "from_spec",
    "kitti_general",
    "kitti_stereo",
    "paper_view",
    "photos",
    "stereo_folder",
]
