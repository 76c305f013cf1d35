"""Write the KITTI Stereo split lists (DSIN/NDIC/ATN protocol) into src/wzcodec/data/splits/.

train = frames _10 and _11 of the KITTI 2012 (194) and 2015 (200) training scenes (788 pairs);
val   = frame _11 of the 195 + 200 testing scenes (395 pairs);
test  = frame _10 of the same testing scenes (395 pairs).
One path per line, x (left colour camera) then y (right colour camera), relative to a KITTI
root that holds the unpacked `data_stereo_flow/` (2012) and `data_scene_flow/` (2015).
"""

from pathlib import Path

SCENES = {  # dataset folder, (left, right) camera folders, training scenes, testing scenes
    "data_stereo_flow": (("colored_0", "colored_1"), 194, 195),
    "data_scene_flow": (("image_2", "image_3"), 200, 200),
}


def kitti_stereo_lines(split: str) -> list[str]:
    part, frames = {
        "train": ("training", ("10", "11")),
        "val": ("testing", ("11",)),
        "test": ("testing", ("10",)),
    }[split]
    lines = []
    for folder, ((cam_x, cam_y), n_train, n_test) in SCENES.items():
        for scene in range(n_train if part == "training" else n_test):
            for frame in frames:
                name = f"{scene:06d}_{frame}.png"
                lines += [f"{folder}/{part}/{cam_x}/{name}", f"{folder}/{part}/{cam_y}/{name}"]
    return lines


if __name__ == "__main__":
    out = Path(__file__).resolve().parents[1] / "src/wzcodec/data/splits"
    for split in ("train", "val", "test"):
        (out / f"kitti_stereo_{split}.txt").write_text("\n".join(kitti_stereo_lines(split)) + "\n")
