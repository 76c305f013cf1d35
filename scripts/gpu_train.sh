#!/bin/bash
# How the shipped weights were trained: hyperprior, atn and ndic side by side on one GPU for
# MIN minutes each (7.5 for the shipped ones), then dsin's fusion net over the exported
# hyperprior (1.6 min). Needs the packed data (scripts/pack_data.py ... gpu/data --quality 90).
#   scripts/gpu_train.sh 7.5 && wz export ... (see the issue notes)
set -e
MIN=${1:-7.5}; RUNS=${RUNS:-runs/gpu}; mkdir -p "$RUNS"
for m in hyperprior atn ndic; do
  python -m wzcodec train --config configs/gpu/$m.yaml --out "$RUNS/$m" --max-minutes "$MIN" \
    > "$RUNS/$m.out" 2>&1 &
done
wait
for m in hyperprior atn ndic; do
  python -m wzcodec export "$RUNS/$m/checkpoint.pt" --out src/wzcodec/weights
done
python -m wzcodec train --config configs/gpu/dsin.yaml --out "$RUNS/dsin" --max-minutes 1.6
python -m wzcodec export "$RUNS/dsin/checkpoint.pt" --out src/wzcodec/weights \
  --base src/wzcodec/weights/hyperprior.safetensors
