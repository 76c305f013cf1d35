"""The data layer: sources, split lists, protocols and the training transform."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from wzcodec.data import (
    PairDataset,
    TrainTransform,
    cityscapes,
    frame_pairs,
    from_spec,
    kitti_general,
    kitti_stereo,
    photos,
    stereo_folder,
)
from wzcodec.data.pairs import Pair
from wzcodec.data.protocols import native_protocol, paper_protocol
from wzcodec.images import pad_to

ROOT = Path(__file__).resolve().parents[1]


def _png(path: Path, h: int, w: int, mode: str = "RGB", seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(a).convert(mode).save(path)


def test_stereo_folder_reads_splits_csv(tmp_path):
    _png(tmp_path / "src/left/a.png", 40, 60)
    _png(tmp_path / "src/right/a.png", 40, 60)
    _png(tmp_path / "src/left/b.png", 40, 60, "L")
    _png(tmp_path / "src/right/b.png", 40, 60, "L")
    (tmp_path / "splits.csv").write_text(
        "source,id,split,scene_group,width,height,channels,left,right\n"
        "src,a,train,g,60,40,rgb,src/left/a.png,src/right/a.png\n"
        "src,b,test,g,60,40,gray,src/left/b.png,src/right/b.png\n"
    )
    assert [p.name for p in stereo_folder(tmp_path, "train")] == ["src/a"]
    ds = PairDataset(from_spec(f"stereo:{tmp_path}", split="test"))
    x, y = ds[0]
    assert x.shape == y.shape == (3, 40, 60)  # gray sources come as 3 channels
    assert torch.equal(x[0], x[1])


def test_frame_pairs_and_photos_csv(tmp_path):
    _png(tmp_path / "s/1.png", 30, 30)
    _png(tmp_path / "s/2.png", 30, 30)
    (tmp_path / "pairs.csv").write_text("source,x,y,split\ns,s/2.png,s/1.png,test\n")
    (tmp_path / "photos.csv").write_text("source,path,split\ns,s/1.png,train\n")
    (p,) = frame_pairs(tmp_path / "pairs.csv", "test")
    assert p.x.name == "2.png" and p.y.name == "1.png"
    (ph,) = photos(tmp_path / "photos.csv", "train")
    assert ph.y is None


def test_shipped_kitti_stereo_lists_follow_the_dsin_protocol(tmp_path):
    import importlib.util

    train, val, test = (kitti_stereo(tmp_path, s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (788, 395, 395)
    assert all(p.x.name == p.y.name for p in train + val + test)
    assert {p.x.name[-6:-4] for p in test} == {"10"} and {p.x.name[-6:-4] for p in val} == {"11"}
    assert "colored_0" in str(train[0].x) and "colored_1" in str(train[0].y)
    spec = importlib.util.spec_from_file_location("mk", ROOT / "scripts/make_kitti_lists.py")
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    for split in ("train", "val", "test"):
        shipped = (ROOT / f"src/wzcodec/data/splits/kitti_stereo_{split}.txt").read_text().split()
        assert shipped == mk.kitti_stereo_lines(split)


def test_kitti_general_pairs_other_camera_one_to_three_frames_apart(tmp_path):
    drive = tmp_path / "2011_09_26/2011_09_26_drive_0001_sync"
    for t in range(8):
        _png(drive / f"image_02/data/{t:010d}.png", 8, 8)
        _png(drive / f"image_03/data/{t:010d}.png", 8, 8)
    pairs = kitti_general(tmp_path)
    gaps = [int(p.y.stem) - int(p.x.stem) for p in pairs]
    assert set(gaps) == {1, 2, 3} and all("image_03" in str(p.y) for p in pairs)


def test_cityscapes_left_right_layout(tmp_path):
    _png(tmp_path / "leftImg8bit/val/bonn/bonn_0_0_leftImg8bit.png", 8, 8)
    _png(tmp_path / "rightImg8bit/val/bonn/bonn_0_0_rightImg8bit.png", 8, 8)
    (p,) = cityscapes(tmp_path, "val")
    assert p.y.exists() and p.split == "val"


def test_unknown_spec_is_refused():
    with pytest.raises(ValueError, match="unknown data spec"):
        from_spec("nope:/x")


@pytest.mark.parametrize(
    "source, shape",
    [
        ("kitti_samples", (375, 1242)),
        ("middlebury", (480, 640)),
        ("cityscapes", (1024, 2048)),
        ("flickr", (1000, 700)),
    ],
)
def test_paper_protocol_gives_128x256(source, shape):
    x = np.zeros((*shape, 3), np.uint8)
    xt, yt = paper_protocol(x, x, Pair(Path("a"), Path("b"), source, "test", "a"))
    assert xt.shape == yt.shape == (3, 128, 256)


def test_native_protocol_keeps_size_and_pad_to_reaches_multiple_of_64():
    x = np.zeros((375, 1242, 3), np.uint8)
    xt, _ = native_protocol(x, x, Pair(Path("a"), Path("b"), "kitti", "test", "a"))
    assert xt.shape == (3, 375, 1242)
    padded = pad_to(xt[None], 64)
    assert padded.shape == (1, 3, 384, 1280)
    assert torch.equal(padded[..., :375, :1242], xt[None])
    assert torch.equal(padded[..., 380, :1242], xt[None][..., 374, :])  # replicate


def test_train_transform_crops_x_and_y_at_the_same_position():
    img = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    t = TrainTransform(crop=128)
    for s in range(10):
        x, y = t(img, img.copy(), Pair(Path("a"), Path("b"), "s", "train", "a"), random.Random(s))
        assert x.shape == (3, 128, 128) and torch.equal(x, y)


def test_train_transform_makes_pseudo_pairs_from_single_photos():
    img = np.random.default_rng(0).integers(0, 256, (300, 400, 3), dtype=np.uint8)
    x, y = TrainTransform(crop=128, swap=False)(
        img, None, Pair(Path("a"), None, "p", "train", "a"), random.Random(1)
    )
    assert x.shape == y.shape == (3, 128, 128) and not torch.equal(x, y)


def test_small_images_are_padded_to_the_crop():
    img = np.zeros((100, 90, 3), np.uint8)
    x, _y = TrainTransform(crop=128)(
        img, img, Pair(Path("a"), Path("b"), "s", "train", "a"), random.Random(0)
    )
    assert x.shape == (3, 128, 128)
