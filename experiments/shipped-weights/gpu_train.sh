#!/bin/bash
# How the shipped weights were trained: hyperprior, atn and ndic side by side on one GPU for
# MIN minutes each (7.5 for the shipped ones), then dsin's fusion net over the exported
# hyperprior (1.6 min). Needs the packed data (scripts/pack_data.py ... gpu/data --quality 90).
#   experiments/shipped-weights/gpu_train.sh 7.5 && wz export ... (docs/experiments.md)
set -e
MIN=${1:-7.5}; RUNS=${RUNS:-runs/gpu}; mkdir -p "$RUNS"
# ndic's GPU run made an earlier ndic (experiments/ndic-side-path/); the shipped ndic is configs/ndic.yaml's
for cfg in shipped-weights/hyperprior-gpu shipped-weights/atn-gpu ndic-side-path/ndic-gpu; do
  m=$(basename "$cfg" -gpu)
  python -m wzcodec train --config "experiments/$cfg.yaml" --out "$RUNS/$m" --max-minutes "$MIN" \
    > "$RUNS/$m.out" 2>&1 &
done
wait
for m in hyperprior atn ndic; do
  python -m wzcodec export "$RUNS/$m/checkpoint.pt" --out src/wzcodec/weights
done
python -m wzcodec train --config experiments/shipped-weights/dsin-gpu.yaml --out "$RUNS/dsin" --max-minutes 1.6
python -m wzcodec export "$RUNS/dsin/checkpoint.pt" --out src/wzcodec/weights \
  --base src/wzcodec/weights/hyperprior.safetensors
