#!/usr/bin/env bash
# mpnet-1: what is measured after training, and the gate, declared before any result (2026-12-02).
#
# Training (started 2026-12-02 15:42 UTC; 728 steps, about 100 minutes fp32 on 2 cores):
#   qa train-reader --base-model mpnet --lora-rank 16 --lora-alpha 32 --lora-dropout 0.0 --lr 5e-4 --warmup 0.06 \
#     --limit 7500 --offset 0 --seed 21 --max-length 192 --stride 64 --batch-size 16 --no-bf16 --removal-fraction 0.2 \
#     --out runs/mpnet-1 --save-every 50 --snapshot-every 100 --log-every 10 --threads 2
#   Re-planned at its step-150 checkpoint (16:08 UTC, before any evaluation) with the same command plus --stop-at 600:
#   the CPU was shared and 728 steps would not have finished in time; from step 150 the rate falls linearly to zero at
#   step 600 (9,600 windows, about 6,200 questions of the 7,500 planned).
#
# Gate for shipping mpnet-1 as the opt-in reader QA_READER=mpnet (one candidate, the final weights):
#   (a) on the 1,000-question seeded sample of SQuAD v1.1 dev (--sample 1000 --sample-seed 0, 256-token windows,
#       stride 96, fp32), F1 above minilm-8's on the same questions;
#   (b) on bench/data/article_test_qa.jsonl and article_final_qa.jsonl, with each reader's own calibration:
#       F1 at least minilm-8's, and no more unanswerable questions answered than minilm-8 answers.
#   Fails (a): not shipped (the adapter is kept in runs/ only). Fails (b) only: shipped as QA_READER=mpnet, saying so.
# Gate for making it the default (the reader issue's): full SQuAD v1.1 dev F1 >= 86, XQuAD-en F1 >= 82, (b), and
# the latency bars. Full SQuAD v1.1 dev costs about 45 minutes of this CPU for MPNet; it is run only if the
# 1,000-question sample scores F1 >= 85 (below that the default cannot switch anyway).
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
PY=.venv/bin/python
R=runs/mpnet-1-results
mkdir -p "$R"
$PY -m qa.training.export runs/mpnet-1/final models/reader-mpnet | tee "$R/export.json"
$PY -m qa.readers mpnet
for m in models/reader-mpnet models/reader; do
  n=$(basename $m)
  [ -s "$R/squad1-sample1000-$n.json" ] && continue  # minilm-8's side may have been measured already
  $PY -m qa.training.evaluate --model $m --sets squad1 --sample 1000 --sample-seed 0 --max-length 256 --stride 96 \
    --no-bf16 --out "$R/squad1-sample1000-$n.json" > /dev/null
done
$PY -m qa.training.calibrate --model models/reader-mpnet --per-kind 300 --no-bf16 --margins "$R/margins-mpnet.jsonl" \
  > "$R/calibrate.txt"
for s in ../shared/eval/article_dev_qa.jsonl bench/data/article_test_qa.jsonl bench/data/article_final_qa.jsonl; do
  for r in mpnet minilm; do
    [ -s "$R/article-$(basename $s .jsonl)-$r.json" ] && continue
    QA_USE_BF16=0 .venv/bin/qa eval "$s" --reader $r --json > "$R/article-$(basename $s .jsonl)-$r.json"
  done
done
$PY -m qa.training.evaluate --model models/reader-mpnet --sets xquad --max-length 256 --stride 96 --no-bf16 \
  --out "$R/xquad-mpnet.json" > /dev/null
# learning curve: the same 300 dev questions after every 100 steps (1,600 windows)
for snap in runs/mpnet-1/snapshots/step-* runs/mpnet-1/final; do
  $PY -m qa.training.evaluate --model "$snap" --sets squad1 --sample 300 --sample-seed 1 --max-length 256 --stride 96 \
    --no-bf16 --out "$R/curve-$(basename $snap).json" > /dev/null
done
echo done > "$R/DONE"
