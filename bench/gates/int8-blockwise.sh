#!/usr/bin/env bash
# Int8 with block-wise products for mpnet-4 (0.5.1). Declared before any result of this int8 on the gate's sets
# (2026-12-07), after:
#   - the engine's p50 per runtime (bench/results/runtimes-engine/, bf16 allowed): mpnet-4 in plain dynamic int8
#     74.7 ms against torch bf16's 117.4; minilm-10 51.6 against 53.8 (int8 does not pay for the small reader in the
#     engine, so only mpnet is gated here);
#   - plain dynamic int8 failed its gate (bench/gates/int8-mpnet.sh: SQuAD v1.1 sample -1.77, XQuAD-en -2.70);
#   - this script's first candidate, SmoothQuant scaling before dynamic int8 (committed as int8-smooth.sh), never
#     reached the gate: on 400 answerable questions of SQuAD 2.0 dev's even-numbered training-part articles it kept
#     fewer best spans of float than plain int8 did (alpha 0.5: 70.0% against 79.7%; alpha 0.3: 20.0%).
# Candidate: qa.quantization as committed with this gate: each product with a weight matrix whose input, on 16 sample
# windows of the shipped article, loses more than 0.05 (relative L2) to one uint8 scale runs as ONNX Runtime's
# MatMulNBits (8-bit weights, blocks of 128, int8 arithmetic: accuracy_level 4); the others stay dynamic int8 (per
# channel). The 0.05 and the block were chosen on those training-part questions only (runs of the scratch sweep,
# reported in docs/performance.md): 98.0% of float's best spans kept, at 0.46x float's time in batches.
#
# Gate B (mpnet runs in int8 under QA_RUNTIME=auto on CPUs with VNNI: qa.runtime.INT8_READERS gets "mpnet"), all of:
#   (B1) SQuAD v1.1 dev, seeded sample of 1,000, and XQuAD-en (all 1,190): F1 in onnx-int8 at most 0.5 under
#        torch's (bf16 autocast, what auto runs on this CPU now), both in the same run (bench/readers.py --f1);
#   (B2) SQuAD 2.0, the calibration articles (all 779 questions), each question's own paragraph, mpnet-4's calibrated
#        threshold: F1 in onnx-int8 at most 0.5 under torch's (the held-out articles choose nothing);
#   (B3) the default (auto) with mpnet in int8: article test and blind F1 (qa eval) each at least the shipped
#        default's (85.9 and 84.0, bench/results/honest-2/) minus 2.5 (one question of 40-45);
#   (B4) engine warm p50 of mpnet in onnx-int8 at most 0.8 x torch's, same run (bench/readers.py, article dev set);
#   (B5) the whole suite (scripts/test.sh) passes with it.
# A CPU without VNNI keeps float (onnx) under auto: int8 there (7-bit weights) is not measured by this gate.
# Reported only: held-out SQuAD 2.0 engine F1 per runtime (qa eval --squad2 --reader mpnet).
# Steps: f1 | squad2 | article | latency | heldout | summary. Results: bench/results/int8-blockwise/.
set -euo pipefail
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 QA_USE_BF16=1
PY=.venv/bin/python
R=bench/results/int8-blockwise
mkdir -p $R
step="${1:-all}"
on() { [[ $step == all || $step == "$1" ]]; }
if on f1; then
  [ -s $R/f1.json ] || $PY bench/readers.py --readers mpnet --runtimes torch,onnx-int8 --no-latency \
    --f1 squad1,xquad --json $R/f1.json | tee $R/f1.txt
fi
if on squad2; then
  for rt in torch onnx-int8; do
    [ -s $R/squad2-calibration-gold-$rt.json ] || QA_RUNTIME=$rt .venv/bin/qa eval --squad2 --mode gold \
      --part calibration --answerable 0 --unanswerable 0 --reader mpnet --json > $R/squad2-calibration-gold-$rt.json
  done
fi
if on article; then  # auto with mpnet in int8 (minilm stays on torch)
  for s in bench/data/article_test_qa.jsonl bench/data/article_final_qa.jsonl; do
    o=$R/article-$(basename $s .jsonl)-auto-mpnet-int8.json
    [ -s $o ] || $PY - "$s" > $o <<'PYEOF'
import sys
from qa import runtime
runtime.INT8_READERS = frozenset({"mpnet"})  # as if the gate had passed: auto runs mpnet in int8
from qa.cli import main
raise SystemExit(main(["eval", sys.argv[1], "--reader", "auto", "--json"]))
PYEOF
  done
fi
if on latency; then
  [ -s $R/readers.json ] || $PY bench/readers.py --readers mpnet --runtimes torch,onnx-int8 --json $R/readers.json \
    | tee $R/readers.txt
fi
if on heldout; then
  for rt in torch onnx-int8; do
    [ -s $R/squad2-heldout-engine-$rt.json ] || QA_RUNTIME=$rt .venv/bin/qa eval --squad2 --reader mpnet --json \
      > $R/squad2-heldout-engine-$rt.json
  done
fi
if on summary; then
  $PY - "$R" <<'PYEOF' | tee $R/gate.txt
import json, sys
from pathlib import Path
r = Path(sys.argv[1])
f1 = {row["runtime"]: row for row in json.loads((r / "f1.json").read_text())["f1"]}
t, q = f1["torch"], f1["onnx-int8"]
s2 = {rt: json.loads((r / f"squad2-calibration-gold-{rt}.json").read_text())["f1"] for rt in ("torch", "onnx-int8")}
art = {s: json.loads((r / f"article-{s}-auto-mpnet-int8.json").read_text())["f1"]
       for s in ("article_test_qa", "article_final_qa")}
lat = {row["runtime"]: row["p50_ms"] for row in json.loads((r / "readers.json").read_text())["results"]}
c = {
    "B1": q["squad1"]["f1"] >= t["squad1"]["f1"] - 0.5 and q["xquad"]["f1"] >= t["xquad"]["f1"] - 0.5,
    "B2": s2["onnx-int8"] >= s2["torch"] - 0.5,
    "B3": art["article_test_qa"] >= 85.9 - 2.5 and art["article_final_qa"] >= 84.0 - 2.5,
    "B4": lat["onnx-int8"] <= 0.8 * lat["torch"],
}
print(f"(B1) SQuAD v1.1 sample {q['squad1']['f1']:.2f} vs torch {t['squad1']['f1']:.2f}; XQuAD-en "
      f"{q['xquad']['f1']:.2f} vs {t['xquad']['f1']:.2f}: {'ok' if c['B1'] else 'FAIL'}")
print(f"(B2) SQuAD 2.0 calibration articles, gold: {s2['onnx-int8']:.2f} vs torch {s2['torch']:.2f}: "
      f"{'ok' if c['B2'] else 'FAIL'}")
print(f"(B3) auto with mpnet in int8, article test {art['article_test_qa']:.1f} (>= 83.4), blind "
      f"{art['article_final_qa']:.1f} (>= 81.5): {'ok' if c['B3'] else 'FAIL'}")
print(f"(B4) p50 mpnet int8 {lat['onnx-int8']:.1f} ms vs torch {lat['torch']:.1f} ms (<= 0.8x): "
      f"{'ok' if c['B4'] else 'FAIL'}")
print("(B5) the suite: run by hand with it installed" if all(c.values()) else "B: FAIL, mpnet stays on torch")
PYEOF
fi
