#!/usr/bin/env bash
# The multi-seed parity runs (docs/parity.md, "What is left"), JOBS programs at a time (default 1), one
# core each. JOBS seeds at a time, each through every step of its group, so that whatever has finished
# when the script is stopped is a set of complete seed pairs in every table. Re-running it skips every
# reference log and textvae run that finished (eval/parity.py reuses them), so it resumes where it was
# stopped.
#
#   PTB=/path/to/ptb LAGGING=... BNVAE=... DUVAE=... PRETRAINING=... [JOBS=2] bash eval/parity_seeds.sh
# (OUT: the results folder, default eval/results/parity; WORK: runs and scratch copies, default runs/parity31)
#
# STEPS picks the steps (default: all seven below: the paired rows, the noise floor and DU-VAE's in-place
# option seed by seed first, then the other four seed by seed). On the reference's batch order both sides
# train on the same sentences in the same order (numpy's scalar sort, the reference's recorded bucket
# order). A marker in $WORK/done/ records each finished seed of a step; after each invocation the step's
# table is re-collected from its finished seeds (eval/parity.py --collect), so a partial table states its
# seeds, and an A/B step (noise, inplace, buckets, frozen) is judged against step 1 (eval/side_ab.py).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${WORK:-runs/parity31}
OUT=${OUT:-eval/results/parity}
PHASES=("paired noise inplace" "four default buckets frozen")
[ -n "${STEPS:-}" ] && PHASES=("$STEPS")
STEPS="${PHASES[*]}"
REFS=(--reference "lagging=$LAGGING" --reference "bn-vae=$BNVAE" --reference "du-vae=$DUVAE"
      --reference "pretraining=$PRETRAINING")
JOBS=${JOBS:-1}
# Both sides' models are scored by textvae's evaluator on the first 1,000 test lines (the reference's imported
# through textvae import); each program scores its own model on the first 200, as an evaluator check: its
# IW-NLL takes one sentence at a time and on 1,000 lines costs as much CPU as its training.
COMMON=(--ptb "$PTB" "${REFS[@]}" --test-lines 1000 --reference-test-lines 200 --work "$WORK")
SEEDS=(783435 101 202 303 404 505)

# per step: the --out folder under eval/results/parity, the seeds it needs, its eval/parity.py arguments
declare -A OUTS=([paired]=paired_six_seeds [noise]=noise_floor_torch1 [inplace]=du_vae_in_place
                 [four]=paired_four_seeds [default]=default_pipeline [buckets]=bucket_order_random
                 [frozen]=frozen_last_word)
declare -A NSEEDS=([paired]=6 [noise]=6 [inplace]=6 [four]=4 [default]=6 [buckets]=6 [frozen]=4)
# 1. paired: VAE + annealing, BN-VAE, DU-VAE (the rows that ran on numpy's AVX2 sort re-run on the scalar
#    sort)
# 2. noise: each reference against itself (same batch order, torch seed + 1)
# 3. inplace: DU-VAE with textvae's in-place renormalisation option against the same reference runs
# 4. four: the other rows, four seeds (β-VAE re-run on the scalar sort)
# 5. default: the pipeline users run (the recipes' own buckets and shuffle) against the reference, unpaired
# 6. buckets: within textvae on the reference's schedule, random bucket contents against argsort
# 7. frozen: textvae with the reference decoders' frozen last word, against the same reference runs
declare -A ARGS=(
    [paired]="--rows kl-annealing bn-vae du-vae"
    [noise]="--rows kl-annealing bn-vae --reference-only --reference-torch-seed-offset 1"
    [inplace]="--rows du-vae --textvae-set strategies.du-vae.scale=\"in-place\" --label du-in-place"
    [four]="--rows vae beta-vae free-bits cyclical delta-vae pretrain-fb lstm-lm"
    [default]="--rows kl-annealing bn-vae du-vae --batch-order default --label default"
    [buckets]="--rows kl-annealing bn-vae du-vae --textvae-set data.bucket_order=\"random\" --label random-buckets"
    [frozen]="--rows kl-annealing bn-vae --textvae-set model.dec_freeze_last_word=true --label frozen-last-word")
# per A/B step: the side compared with itself against step 1's runs, the --out folder, the title
declare -A AB_SIDE=([noise]=reference [inplace]=textvae [buckets]=textvae [frozen]=textvae)
declare -A AB_OUT=([noise]=noise_floor [inplace]=du_vae_in_place_effect [buckets]=bucket_order_effect
                   [frozen]=frozen_last_word_effect)
declare -A AB_TITLE=([noise]="Noise floor: the reference program against itself (same batch order, other torch seed)"
                     [inplace]="DU-VAE: textvae's in-place renormalisation against its default (same batch order)"
                     [buckets]="textvae: random bucket contents against argsort (the reference's schedule)"
                     [frozen]="textvae: the reference decoders' frozen last word against textvae's default")
for s in $STEPS; do
    [ -n "${OUTS[$s]:-}" ] || { echo "parity_seeds.sh: unknown step $s (${!OUTS[*]})" >&2; exit 2; }
done
mkdir -p "$WORK/done" "$WORK/partial"

collect() {  # collect STEP: the step's table from its finished seeds
    local finished=() seed
    for seed in "${SEEDS[@]}"; do [ -e "$WORK/done/$1-$seed" ] && finished+=("$seed"); done
    [ ${#finished[@]} -gt 0 ] || return 0
    # shellcheck disable=SC2086  # ARGS holds several words by design
    $PY -m eval.parity "${COMMON[@]}" ${ARGS[$1]} --jobs "$JOBS" --collect --seeds "${finished[@]}" --out "$OUT/${OUTS[$1]}" >/dev/null
}

for group in "${PHASES[@]}"; do
    while :; do
        ran=0
        for s in $group; do
            todo=()  # the step's first JOBS seeds not yet done
            for seed in "${SEEDS[@]:0:${NSEEDS[$s]}}"; do
                [ ${#todo[@]} -lt "$JOBS" ] && [ ! -e "$WORK/done/$s-$seed" ] && todo+=("$seed")
            done
            [ ${#todo[@]} -gt 0 ] || continue
            ran=1
            # shellcheck disable=SC2086
            $PY -m eval.parity "${COMMON[@]}" ${ARGS[$s]} --seeds "${todo[@]}" --jobs "$JOBS" \
                --out "$WORK/partial/$s-$(IFS=-; echo "${todo[*]}")" >/dev/null
            for seed in "${todo[@]}"; do touch "$WORK/done/$s-$seed"; done
            collect "$s"
            if [ -n "${AB_SIDE[$s]:-}" ] && [ -e "$OUT/paired_six_seeds/parity.json" ]; then
                $PY -m eval.side_ab "$OUT/paired_six_seeds" "$OUT/${OUTS[$s]}" --side "${AB_SIDE[$s]}" \
                    --title "${AB_TITLE[$s]}" --out "$OUT/${AB_OUT[$s]}" >/dev/null
            fi
        done
        [ $ran = 1 ] || break
    done
done
if [ -e "$OUT/paired_six_seeds/parity.json" ] && [ -e "$OUT/paired_four_seeds/parity.json" ]; then
    $PY -m eval.parity --merge $OUT/paired_six_seeds $OUT/paired_four_seeds --out $OUT/paired_merged
fi
