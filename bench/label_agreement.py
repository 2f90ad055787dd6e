"""How often each reader's best span is the gold span, on a distillation run's training questions and on dev.

Distillation teaches the student the teacher's start/end distributions over the student's own training questions.
That can only help where the teacher knows those questions better than the student does. This benchmark reads
``--questions`` answerable questions of a training selection (``--seed --offset --limit``, as ``qa train-reader``
selects them) and as many SQuAD v1.1 dev questions, with each reader exactly as the teacher is run
(:func:`qa.training.teacher.score_examples`: 384-token windows, stride 128), and prints per reader and set:

* how often its best start character is the gold answer's first character, its best end character the gold
  answer's end, and both (a single gold answer: the first one, on dev too);
* how peaked its start distribution is: the mean probability of its best start over its no-answer score and
  its 20 best start characters, at temperature 1 and 2 (what a distillation target at that temperature holds).

Run (about 3 minutes on 2 idle cores, most of it the MPNet reader)::

    .venv/bin/python bench/label_agreement.py --readers minilm,mpnet --json bench/results/label_agreement.json
"""

from __future__ import annotations

import argparse
import random
import time

import _common as c
import numpy as np

from qa.config import SHARED_DIR


def agreement(records: dict[str, np.ndarray], examples) -> dict[str, float]:
    """Share of examples whose top start / end character (and both) is the gold answer's."""
    start = np.asarray([records["start_char"][i, 0] == e.answer_start for i, e in enumerate(examples)])
    end = np.asarray([records["end_char"][i, 0] == e.answer_start + len(e.answer_text)
                      for i, e in enumerate(examples)])
    return {"start_pct": round(100 * float(start.mean()), 1), "end_pct": round(100 * float(end.mean()), 1),
            "both_pct": round(100 * float((start & end).mean()), 1)}


def disagreements(records: dict[str, np.ndarray], examples) -> list[tuple]:
    """``(example, best start, best end)`` for each example whose best start is not the gold answer's."""
    return [(e, int(records["start_char"][i, 0]), int(records["end_char"][i, 0]))
            for i, e in enumerate(examples) if records["start_char"][i, 0] != e.answer_start]


def peakedness(records: dict[str, np.ndarray], temperature: float) -> float:
    """Mean probability of the best start among the no-answer score and the kept start characters."""
    from qa.training.teacher import softmax_targets

    tops = [softmax_targets(np.r_[records["null_start"][i], records["start_logit"][i].astype(np.float64)],
                            temperature)[1] for i in range(len(records["null_start"]))]
    return round(float(np.mean(tops)), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readers", default="minilm,mpnet", help="shipped reader names or folders, comma-separated")
    parser.add_argument("--questions", type=int, default=300, help="answerable questions per set")
    parser.add_argument("--seed", type=int, default=17, help="the training selection's seed")
    parser.add_argument("--offset", type=int, default=18000, help="the training selection's offset")
    parser.add_argument("--limit", type=int, default=12000, help="the training selection's size")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--show", type=int, default=0, metavar="N",
                        help="also print each reader's first N disagreements with the gold start on each set")
    args, env = c.start(parser, None)

    from qa.reader import Reader
    from qa.readers import reader_name
    from qa.training.data import load_squad, training_examples
    from qa.training.teacher import score_examples

    squad = SHARED_DIR / "qa-data" / "squad-v1.1"
    train = [e for e in training_examples(squad / "train-v1.1.json", args.limit, args.offset, args.seed, 0.0, 0.0)
             if e.answer_start >= 0][: args.questions]
    dev = load_squad(squad / "dev-v1.1.json")
    dev = random.Random(0).sample(dev, args.questions)
    sets = {"train": train, "dev": dev}
    print(c.header("Reader spans against gold labels", env))
    report = {"env": env, "bf16": args.bf16, "questions": args.questions, "readers": [],
              "train_selection": {"seed": args.seed, "offset": args.offset, "limit": args.limit}}
    print(f"{'reader':10} {'set':6} {'start%':>7} {'end%':>6} {'both%':>6} {'top1 T=1':>9} {'top1 T=2':>9} {'ex/s':>6}")
    for name in args.readers.split(","):
        reader = Reader.load(name, max_length=384, stride=128, use_bf16=args.bf16, batch_size=32)
        for set_name, examples in sets.items():
            started = time.perf_counter()
            records = score_examples(reader, examples, top_k=20)
            rate = len(examples) / (time.perf_counter() - started)
            row = {"reader": reader_name(name), "set": set_name, **agreement(records, examples),
                   "top1_t1": peakedness(records, 1.0), "top1_t2": peakedness(records, 2.0),
                   "examples_per_s": round(rate, 1)}
            report["readers"].append(row)
            print(f"{row['reader']:10} {set_name:6} {row['start_pct']:7.1f} {row['end_pct']:6.1f} "
                  f"{row['both_pct']:6.1f} {row['top1_t1']:9.3f} {row['top1_t2']:9.3f} {rate:6.1f}")
            for ex, start, end in disagreements(records, examples)[: args.show]:
                print(f"    {ex.question!r}: gold {ex.answer_text!r}, best {ex.context[start:end]!r}")
    c.write_json(args.json, report)


if __name__ == "__main__":
    main()
