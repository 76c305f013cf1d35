#!/usr/bin/env bash
# The multi-camera figures (docs/multi-camera.md) with the flow receiver: the rig runs with
# y1 = right(t), y2 = left(t-1) and both, and the Udacity sequence fed forward. Before it,
# the earlier patch-matching receiver's rows of results/rig-test were relabelled *-match[...]
# (experiments/flow-receiver/relabel.py results/rig-test). About 1.5 hours on 2 cores.
set -euo pipefail
R="--data rig:../shared/data/stereo --split test --no-estimate --workers 1 --every 2 --anchor avif"
wz eval $R --models avif-si,heic-si --sides 1 --merge results/rig-test --out results/rig-test
wz eval $R --models avif-si,heic-si --sides 2 --merge results/rig-test --out results/rig-test
wz eval $R --models avif-si,heic-si --sides 1,2 --merge results/rig-test --out results/rig-test
wz eval-seq ../shared/data/sequences/udacity_solidwhiteright --model avif-si \
        --qualities 2,10,20,30,40,50 --out results/sequence-udacity
