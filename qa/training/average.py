"""Average the weights of readers fine-tuned from one another (a "model soup" along one training run).

Two checkpoints of the same run often sit on either side of a flat region of the loss; their element-wise
mean can score better than either (Wortsman et al., 2022, "Model soups"). The folders must hold the same
architecture (same tensor names and shapes); the mean is computed and written in float32. The first folder's
config and tokenizer files are copied, and ``train_config.json`` (when present) gets a ``weight_average``
entry naming the inputs and weights.

Run: ``python -m qa.training.average models/reader runs/reader-p4/final --out runs/reader-soup``
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

log = logging.getLogger(__name__)
WEIGHTS = "model.safetensors"


def average_tensors(states: list[dict], weights: list[float] | None = None) -> dict:
    """The weighted element-wise mean of state dicts, in float32.

    Args:
        states: state dicts with the same keys and shapes (any floating dtype).
        weights: one per state, summing to 1 (default: equal).
    Returns:
        ``{name: float32 tensor}``; integer tensors (position ids, counters) are kept as they are.
    Raises:
        ValueError: keys or shapes differ, an integer tensor differs, or the weights do not match the states or
            do not sum to 1.
    """
    weights = weights or [1.0 / len(states)] * len(states)
    if len(weights) != len(states) or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"need one weight per checkpoint, summing to 1; got {weights}")
    names = set(states[0])
    for state in states[1:]:
        if set(state) != names:
            raise ValueError(f"checkpoints hold different tensors: {sorted(names ^ set(state))[:5]}")
    out = {}
    for name in states[0]:
        shapes = {tuple(s[name].shape) for s in states}
        if len(shapes) > 1:
            raise ValueError(f"tensor {name} has different shapes: {sorted(shapes)}")
        if not states[0][name].is_floating_point():
            if any(not (s[name] == states[0][name]).all() for s in states[1:]):
                raise ValueError(f"integer tensor {name} differs between checkpoints; it cannot be averaged")
            out[name] = states[0][name].clone()
            continue
        out[name] = sum(w * s[name].float() for w, s in zip(weights, states))
    return out


def average(folders: list[Path], out: Path, weights: list[float] | None = None) -> Path:
    """Write the weighted mean of the readers in ``folders`` to ``out`` (float32 safetensors plus the first
    folder's other files).

    Returns:
        ``out``.
    """
    from safetensors.torch import load_file, save_file

    for folder in folders:
        if not (folder / WEIGHTS).is_file():
            raise FileNotFoundError(f"{folder / WEIGHTS} not found: pass folders written by save_pretrained")
    weights = weights or [1.0 / len(folders)] * len(folders)
    state = average_tensors([load_file(str(f / WEIGHTS)) for f in folders], weights)
    out.mkdir(parents=True, exist_ok=True)
    for path in folders[0].iterdir():
        if path.is_file() and path.name != WEIGHTS:
            shutil.copy2(path, out / path.name)
    save_file(state, str(out / WEIGHTS), metadata={"format": "pt"})
    config = out / "train_config.json"
    if config.is_file():
        settings = json.loads(config.read_text(encoding="utf-8"))
        settings["weight_average"] = {"of": [str(f) for f in folders], "weights": weights}
        config.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    log.info("averaged %d readers into %s", len(folders), out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", help="reader folders (save_pretrained) to average")
    parser.add_argument("--out", type=Path, required=True, help="folder for the averaged reader")
    parser.add_argument("--weights", type=float, nargs="+", help="one per folder, summing to 1 (default: equal)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    try:
        print(average(args.folders, args.out, args.weights))
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
