#!/usr/bin/env bash
# The multi-seed parity runs (docs/parity.md, "What is left"), one program at a time on one core, in
# the order they matter. Re-running the script skips every reference log and textvae run that
# finished (eval/parity.py reuses them), so it resumes where it was stopped.
#
#   PTB=/path/to/ptb LAGGING=... BNVAE=... DUVAE=... PRETRAINING=... bash eval/parity_seeds.sh
#
# Every invocation scores IW-NLL on the first 1,000 PTB test lines and trains both sides on the same
# sentences in the same order (numpy's scalar sort, the reference's recorded bucket order).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-runs/parity31}
OUT=eval/results/parity
REFS=(--reference "lagging=$LAGGING" --reference "bn-vae=$BNVAE" --reference "du-vae=$DUVAE"
      --reference "pretraining=$PRETRAINING")
COMMON=(--ptb "$PTB" "${REFS[@]}" --test-lines 1000 --jobs 1 --work "$WORK")
SIX=(783435 101 202 303 404 505)
FOUR=(783435 101 202 303)

# 1. paired, six seeds: VAE + annealing, BN-VAE, DU-VAE (the four AVX2-sort rows re-run on the scalar sort)
$PY eval/parity.py "${COMMON[@]}" --rows kl-annealing bn-vae du-vae --seeds "${SIX[@]}" --out $OUT/paired_six_seeds
# 2. the noise floor: each reference against itself (same batch order, torch seed + 1)
$PY eval/parity.py "${COMMON[@]}" --rows kl-annealing bn-vae --seeds "${SIX[@]}" --reference-only \
    --reference-torch-seed-offset 1 --out $OUT/noise_floor_torch1
$PY eval/noise_floor.py $OUT/paired_six_seeds $OUT/noise_floor_torch1 --out $OUT/noise_floor
# 3. paired, four seeds: the other rows (β-VAE re-run on the scalar sort)
$PY eval/parity.py "${COMMON[@]}" --rows vae beta-vae free-bits cyclical delta-vae pretrain-fb lstm-lm \
    --seeds "${FOUR[@]}" --out $OUT/paired_four_seeds
# 4. the pipeline users run: the recipes' own buckets and shuffle against the reference's runs, unpaired
$PY eval/parity.py "${COMMON[@]}" --rows kl-annealing bn-vae du-vae --seeds "${SIX[@]}" --batch-order default \
    --label default --out $OUT/default_pipeline
# 5. the bucket-order A/B within textvae on the reference's schedule: random bucket contents vs argsort
$PY eval/parity.py "${COMMON[@]}" --rows kl-annealing bn-vae du-vae --seeds "${SIX[@]}" \
    --textvae-set 'data.bucket_order="random"' --label random-buckets --out $OUT/bucket_order_random
# 6. the merged table
$PY eval/parity.py --merge $OUT/paired_six_seeds $OUT/paired_four_seeds --out $OUT/paired_merged
