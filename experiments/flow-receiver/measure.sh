#!/usr/bin/env bash
# Every figure of the shipped flow receiver (avif-si / heic-si), each run merged into the
# result folders beside the other methods' rows (docs/receiver.md, README). About 40 minutes
# on 2 cores. Before it, the earlier patch-matching receiver's rows were relabelled
# avif-si-match / heic-si-match (experiments/flow-receiver/relabel.py).
set -euo pipefail
S="--data stereo:../shared/data/stereo --split test --no-estimate --workers 2"
wz eval $S --every 2 --models avif-si,heic-si \
        --merge results/stereo-test-native --out results/stereo-test-native
for s in other shifted dark none oracle; do
  wz eval $S --every 6 --qualities 20,50 --models avif-si,heic-si --side $s \
          --merge results/side-gap/$s --out results/side-gap/$s
done
python experiments/flow-receiver/speed.py > results/flow-receiver-speed.txt
wz eval-seq ../shared/data/stereo/kitti_odometry_vo_samples/left/seqB_*.png --model avif-si \
        --qualities 2,10,20,30,40,50 --out results/sequence-kitti-seqB
wz eval-seq ../shared/data/sequences/opensfm_lund_street --model avif-si \
        --qualities 2,10,20,30,40,50 --out results/sequence-lund
wz eval $S --every 2 --models avif-si,heic-si --side decoded --out results/stereo-test-decoded
