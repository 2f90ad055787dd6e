"""How a distillation run's teacher targets agree with its gold labels, window by window.

For each training window of a distilled run (rebuilt from its ``train_config.json`` and teacher folder, as
``qa train-reader`` builds them), the teacher's start distribution over the student window
(:func:`qa.training.teacher.window_targets`, as the code stands) is compared with the window's gold label:
windows that hold the answer and windows labelled no-answer (paired, answer-deleted and answer-cut windows).
Printed per kind: the mean probability the target puts on [CLS] (no answer), how often its most probable
position is the gold label's, and how often it puts under half its mass on [CLS]. A no-answer window whose
target prefers a span teaches the student the opposite of its gold label.

Run (about a minute; needs the run's teacher folder in ``runs/``)::

    .venv/bin/python bench/teacher_targets.py runs/minilm-9-distil --json bench/results/minilm-9/teacher-targets.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a distilled run's folder (with train_config.json)")
    parser.add_argument("--tokenizer", default="models/reader", help="the student's tokenizer folder")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from qa.training.train import TrainConfig, prepare

    raw = json.loads((Path(args.run) / "train_config.json").read_text(encoding="utf-8"))
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in raw.items() if k in fields})
    if not cfg.teacher:
        parser.error(f"{args.run} was not distilled: its train_config.json names no teacher")
    feats = prepare(cfg, AutoTokenizer.from_pretrained(args.tokenizer))
    cls_mass, agrees, no_answer = [], [], []
    for i in range(len(feats)):
        start, _, _ = feats.teacher.batch([i], len(feats.input_ids[i]))
        gold = int(feats.start_positions[i])
        cls_mass.append(float(start[0, 0]))
        agrees.append(int(np.argmax(start[0])) == gold)
        no_answer.append(gold == 0)
    cls_mass, agrees, no_answer = map(np.asarray, (cls_mass, agrees, no_answer))
    report = {"run": args.run, "teacher": cfg.teacher, "temperature": cfg.temperature, "kinds": {}}
    for kind, mask in (("answer", ~no_answer), ("no-answer", no_answer)):
        row = {"windows": int(mask.sum()), "mean_cls_mass": round(float(cls_mass[mask].mean()), 3),
               "argmax_is_gold_pct": round(100 * float(agrees[mask].mean()), 1),
               "cls_mass_under_half_pct": round(100 * float((cls_mass[mask] < 0.5).mean()), 1)}
        report["kinds"][kind] = row
        print(f"{kind}: {row['windows']} windows; mean target mass on [CLS] {row['mean_cls_mass']}; its most "
              f"probable position is the gold label's in {row['argmax_is_gold_pct']}%; under half on [CLS] in "
              f"{row['cls_mass_under_half_pct']}%")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
