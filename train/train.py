"""Train `fer_model.EmotionCNN` on FER-2013 with accelerate: CPU, one GPU or many, mixed precision.

    python -m train.train --dataset ../shared/fer2013 --output-dir runs/fer
    accelerate launch -m train.train --dataset ../shared/fer2013 --output-dir runs/fer --epochs 200

The whole dataset is decoded once into uint8 tensors that live on the device; batches are
augmented there. Every epoch is validated; the best weights (by `--monitor`) are written as
`save_pretrained` output into `--output-dir`, the full state into `--output-dir/checkpoint`.
SIGINT/SIGTERM save the state mid-epoch; `--resume` continues from it.
"""
from __future__ import annotations

import importlib.util
import json
import shlex
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import broadcast_object_list, set_seed
from timm.data import Mixup
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler
from timm.utils import ModelEmaV3
from torch.utils.data import DataLoader, TensorDataset
from tqdm.auto import tqdm

from fer_model.config import EMOTIONS, FERConfig, ModelConfig, PreprocessConfig
from fer_model.errors import FERError
from fer_model.hub import build_model, load_pretrained, push_to_hub, resolve, save_pretrained
from fer_model.preprocess import normalize
from fer_model.calibration.tta import center_crop

from .augment import augment, capture, random_crop
from .data import DatasetFormatError, faces_mode, load_fer_dataset, person_splits, split_votes, to_tensors
from .evaluate import load_metric
from .ferplus import agreement, has_target
from .ferplus import targets as vote_targets
from .finish import finish_run
from .options import parse_args
from .quantize import range_faces
from .report import COMMAND_FILE, HISTORY_FILE, device_name

CHECKPOINT = "checkpoint"


@dataclass
class Progress:
    """Where the run is: saved with the checkpoint so a resumed run continues at the same batch."""

    epoch: int = 0
    step: int = 0
    best: float | None = None
    bad_epochs: int = 0
    history: list = field(default_factory=list)

    def update(self, score: float, lower_is_better: bool, min_delta: float = 0.0) -> bool:
        """Record an epoch's monitored score; True when it beats the best by more than `min_delta`."""
        improved = self.best is None or (score < self.best - min_delta if lower_is_better
                                         else score > self.best + min_delta)
        self.best = score if improved else self.best
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        return improved

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.__dict__.update(state)


class StopSignal:
    """While active, SIGINT/SIGTERM set a flag that the loop checks after every step."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.received = None
        self._previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        self.received = signal.Signals(signum).name


class TimeBudget:
    """Ends training within `minutes` of its start: after each epoch from the second on, the cosine schedule is
    set to end at the last epoch that fits at the mean time per epoch after the first (which pays for warm-up)."""

    def __init__(self, minutes: float, max_epochs: int):
        self.seconds, self.max_epochs, self.started = minutes * 60, max_epochs, time.monotonic()
        self.first_done: tuple[float, int] | None = None

    def fit(self, scheduler, epoch: int, steps_per_epoch: int) -> bool:
        """Called after `epoch` epochs are done; True when the schedule's end moved."""
        now = time.monotonic()
        if self.first_done is None:
            self.first_done = (now, epoch)
            return False
        per_epoch = (now - self.first_done[0]) / (epoch - self.first_done[1])
        fits = min(self.max_epochs, epoch + max(0, int((self.seconds - (now - self.started)) / per_epoch)))
        if fits == epochs(scheduler, steps_per_epoch):
            return False
        scheduler.t_initial = fits * steps_per_epoch
        return True


def epochs(scheduler, steps_per_epoch: int) -> int:
    """The epoch the cosine schedule ends at (it decides when training ends)."""
    return scheduler.t_initial // steps_per_epoch


def with_new_head(model: torch.nn.Module, config: FERConfig) -> torch.nn.Module:
    """A model for `config`'s labels carrying every weight of `model` whose shape fits (all but the head's last
    layer): the backbone and the hidden layer are kept, the label layer starts afresh."""
    fresh = build_model(config)
    state = fresh.state_dict()
    state.update({k: v for k, v in model.state_dict().items() if k in state and v.shape == state[k].shape})
    fresh.load_state_dict(state)
    return fresh


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=num_classes).float().clamp(min=1)
    return (counts.mean() / counts) ** 0.5


def main(argv=None) -> dict:
    args = parse_args(argv)
    command = "python -m train.train " + shlex.join(sys.argv[1:] if argv is None else argv)
    mixed_precision = args.mixed_precision or default_mixed_precision()
    out = Path(args.output_dir)
    AcceleratorState._reset_state(reset_partial_state=True)  # each run sets its own precision, also in one process
    accelerator = Accelerator(mixed_precision=mixed_precision, project_dir=str(out),
                              log_with="tensorboard" if _has_tensorboard() else None)
    set_seed(args.seed)
    device, is_main = accelerator.device, accelerator.is_main_process
    hardware = f"{accelerator.num_processes} x {device_name(device)}, {mixed_precision}".removeprefix("1 x ")

    initial, source_folder = None, None
    if args.init_from:
        try:
            source_folder = resolve(args.init_from)
            initial, source = load_pretrained(source_folder)
        except FERError as err:
            raise SystemExit(f"error: --init-from: {err}") from None
        config = FERConfig(model=source.model, preprocessing=source.preprocessing, labels=source.labels)
    else:
        config = FERConfig(model=ModelConfig(widths=tuple(int(w) for w in args.widths.split(",")),
                                             convs_per_stage=args.convs_per_stage, hidden=args.hidden,
                                             dropout=args.dropout),
                           preprocessing=PreprocessConfig(crop_size=args.crop_size))
    pre = config.preprocessing
    try:
        data = load_fer_dataset(args.dataset, seed=args.seed, own_labels=args.own_labels)
    except DatasetFormatError as err:
        raise SystemExit(f"error: {err}") from None
    labels = tuple(data["train"].features["label"].names)
    base = source.calibration() if initial is not None and source.labels == labels else None
    if labels != config.labels:  # the data's own label set: a head of its own, on the base model's backbone
        config = replace(config, labels=labels)
        if initial is not None:
            initial = with_new_head(initial, config)
            accelerator.print(f"a new head for the labels {', '.join(labels)}; the backbone is {args.init_from}'s")
    face_mode = faces_mode(args.faces, args.dataset)
    try:
        train_x, train_y = (t.to(device) for t in to_tensors(data["train"], pre.image_size, args.limit_train, face_mode))
        val_x, val_y = (t.to(device) for t in to_tensors(data["validation"], pre.image_size, args.limit_val, face_mode))
        extra = None
        if args.extra_dataset:
            extra_data = person_splits(args.extra_dataset, args.extra_held_out)
            extra = [t.to(device) for split in ("train", "calibration")
                     for t in to_tensors(extra_data[split], pre.image_size, faces="crop")]
    except DatasetFormatError as err:
        raise SystemExit(f"error: {err}") from None
    num_classes = len(config.labels)
    votes = {name: split_votes(data[name], limit) if face_mode == "whole" and labels == EMOTIONS else None
             for name, limit in (("train", args.limit_train), ("validation", args.limit_val))}
    if args.vote_mix and votes["train"] is None:
        raise SystemExit(f"error: --vote-mix: {args.dataset} has no FER+ votes for its train split "
                         "(ferplus/train.parquet in the dataset folder, train.ferplus)")
    from_extra = torch.zeros(len(train_y), dtype=torch.bool, device=device)
    face_weights = torch.ones(len(train_y), device=device)
    target_probabilities = None
    if args.vote_mix:  # soft targets; faces no rater took for an emotion (not a face) are left out
        target_probabilities = torch.from_numpy(vote_targets(train_y.cpu().numpy(), votes["train"], args.vote_mix))
        face_weights = torch.from_numpy(has_target(votes["train"])).float()
        target_probabilities, face_weights = target_probabilities.to(device), face_weights.to(device)
    if extra:  # the extra faces join the training set --extra-repeat times, flagged for their own loss
        extra_weights = class_weights(extra[1], num_classes)[extra[1]] if args.extra_balance else torch.ones(len(extra[1]), device=device)
        train_x = torch.cat([train_x, extra[0].repeat(args.extra_repeat, 1, 1)])
        train_y = torch.cat([train_y, extra[1].repeat(args.extra_repeat)])
        from_extra = torch.cat([from_extra, torch.ones(len(extra[1]) * args.extra_repeat, dtype=torch.bool,
                                                        device=device)])
        face_weights = torch.cat([face_weights, (extra_weights / extra_weights.mean()).repeat(args.extra_repeat)])
        if target_probabilities is not None:
            target_probabilities = torch.cat([target_probabilities, F.one_hot(
                extra[1], num_classes).float().repeat(args.extra_repeat, 1)])
    weights = class_weights(train_y, num_classes)
    try:
        teachers = [Teacher.load(source, device) for source in args.teacher]
    except FERError as err:
        raise SystemExit(f"error: --teacher: {err}") from None

    model = (initial if initial is not None else build_model(config)).to(memory_format=torch.channels_last)
    optimizer = create_optimizer_v2(model, opt="adamw" if args.optimizer == "adamw" else "sgd", lr=args.lr,
                                    weight_decay=args.weight_decay, momentum=0.9)
    val_loader = DataLoader(TensorDataset(torch.arange(len(val_y))), batch_size=512)
    extra_loader = DataLoader(TensorDataset(torch.arange(len(extra[3]) if extra else 0)), batch_size=512)
    model, optimizer, val_loader, extra_loader = accelerator.prepare(model, optimizer, val_loader, extra_loader)
    if args.compile:
        model = torch.compile(model)
    ema = ModelEmaV3(accelerator.unwrap_model(model), decay=args.ema_decay, use_warmup=True) if args.ema_decay > 0 else None

    per_step = args.batch_size * accelerator.num_processes
    steps_per_epoch = max(1, len(train_y) // per_step)
    scheduler = CosineLRScheduler(optimizer, t_initial=args.epochs * steps_per_epoch, lr_min=args.lr * 0.01,
                                  warmup_t=int(args.warmup_epochs * steps_per_epoch), warmup_lr_init=args.lr * 0.01,
                                  t_in_epochs=False)
    progress = Progress()
    for obj in (scheduler, progress) + ((ema,) if ema else ()):
        accelerator.register_for_checkpointing(obj)
    if args.resume and (out / CHECKPOINT).is_dir():
        accelerator.load_state(str(out / CHECKPOINT))
        accelerator.print(f"resumed from {out / CHECKPOINT} at epoch {progress.epoch + 1}, step {progress.step}")
        if scheduler.t_initial != args.epochs * steps_per_epoch:  # a new --epochs: the cosine goes on to the new end
            accelerator.print(f"schedule now ends at epoch {args.epochs}")
            scheduler.t_initial = args.epochs * steps_per_epoch
    elif args.resume:
        accelerator.print(f"--resume: no checkpoint in {out}, starting fresh")
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
        recorded = ""  # a fine-tuning's card lists first the commands that made its source, once
        if source_folder and not args.resume and (source_folder / COMMAND_FILE).is_file():
            recorded = (source_folder / COMMAND_FILE).read_text().strip() + "\n"
        with open(out / COMMAND_FILE, "a" if args.resume else "w") as file:  # a resumed run adds its command
            file.write(recorded + command + "\n")
    accelerator.init_trackers("fer", config={k: str(v) if isinstance(v, (list, tuple)) or v is None else v
                                             for k, v in vars(args).items()})
    metric = load_metric()
    loss_weights = weights if args.balance == "loss" else None
    mix = (Mixup(mixup_alpha=args.mixup, cutmix_alpha=args.cutmix, label_smoothing=0.0, num_classes=num_classes)
           if args.mixup or args.cutmix else None)
    budget = TimeBudget(args.time_budget, args.epochs) if args.time_budget else None

    def epoch_order(epoch: int) -> torch.Tensor:
        """This process's shuffled (or class-balanced) sample order, the same for an epoch on every resume."""
        generator = torch.Generator().manual_seed(args.seed * 100_003 + epoch)
        n = len(train_y)
        order = (torch.multinomial(weights.cpu()[train_y.cpu()], n, replacement=True, generator=generator)
                 if args.balance == "sampler" else torch.randperm(n, generator=generator))
        return order[: steps_per_epoch * per_step][accelerator.process_index::accelerator.num_processes].to(device)

    def save_checkpoint() -> None:
        """Write the state next to the old one, then swap, so an interrupted save loses nothing."""
        accelerator.wait_for_everyone()
        accelerator.save_state(str(out / f"{CHECKPOINT}.tmp"))
        if is_main:
            shutil.rmtree(out / CHECKPOINT, ignore_errors=True)
            (out / f"{CHECKPOINT}.tmp").rename(out / CHECKPOINT)
        accelerator.wait_for_everyone()

    with StopSignal() as stop:
        while progress.epoch < epochs(scheduler, steps_per_epoch) and progress.bad_epochs < args.patience:
            epoch, started = progress.epoch, time.time()
            model.train()
            order = epoch_order(epoch)
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            seen = torch.zeros((), device=device)
            shown = 0.0
            bar = tqdm(range(progress.step, steps_per_epoch), disable=not is_main, leave=False,
                       desc=f"epoch {epoch + 1}/{epochs(scheduler, steps_per_epoch)}")
            for step in bar:
                idx = order[step * args.batch_size:(step + 1) * args.batch_size]
                faces = random_crop(augment(train_x[idx], max_aspect=0.15 if args.capture else 0.0), pre.input_size)
                targets = train_y[idx]
                soft_targets = targets if target_probabilities is None else target_probabilities[idx]
                extra_faces, weight = from_extra[idx], face_weights[idx]
                if mix:
                    mixed, soft_targets = mix(faces.unsqueeze(1), targets)
                    faces = mixed.squeeze(1)
                captured = capture(faces, args.capture) if args.capture else faces  # teachers see the clean face
                inputs = normalize(captured, pre).contiguous(memory_format=torch.channels_last)
                with accelerator.autocast():
                    logits = model(inputs)
                    per_face = torch.where(
                        extra_faces,
                        F.cross_entropy(logits.float(), soft_targets, weight=loss_weights, reduction="none",
                                        label_smoothing=args.extra_label_smoothing),
                        F.cross_entropy(logits.float(), soft_targets, weight=loss_weights, reduction="none",
                                        label_smoothing=args.label_smoothing))
                    if teachers:  # --dataset's faces keep the teachers' reading; extra ones too with --kd-extra
                        distilled = distillation_loss(logits, faces, teachers, args.kd_temperature)
                        blended = (1 - args.kd_weight) * per_face + args.kd_weight * distilled
                        per_face = blended if args.kd_extra else torch.where(extra_faces, per_face, blended)
                    loss = (per_face * weight).mean()
                accelerator.backward(loss)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                global_step = epoch * steps_per_epoch + step + 1
                scheduler.step_update(global_step)
                if ema:
                    ema.update(accelerator.unwrap_model(model), step=global_step)
                loss_sum += loss.detach() * len(idx)
                correct += (logits.argmax(1) == targets).sum()
                seen += len(idx)
                if time.monotonic() - shown > 0.5 or step == steps_per_epoch - 1:  # no per-step device sync
                    bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
                    shown = time.monotonic()
                if stop.received:
                    progress.step = step + 1
                    save_checkpoint()
                    accelerator.print(f"{stop.received}: stopped at epoch {epoch + 1}, step {step + 1}/{steps_per_epoch}; "
                                      f"state saved to {out / CHECKPOINT}. Continue with --resume.")
                    accelerator.end_training()
                    raise SystemExit(130 if stop.received == "SIGINT" else 143)
            seen = max(accelerator.reduce(seen, "sum").item(), 1)  # per sample, however few there are
            train_loss = accelerator.reduce(loss_sum, "sum").item() / seen
            train_accuracy = accelerator.reduce(correct, "sum").item() / seen

            eval_model = ema.module if ema else model
            val = validate(accelerator, eval_model, val_loader, val_x, val_y, pre, metric, config.labels,
                           votes["validation"])
            record = {"epoch": epoch + 1, "train_loss": train_loss, "train_accuracy": train_accuracy,
                      "val_loss": val["loss"], "val_accuracy": val["accuracy"], "val_macro_f1": val["macro_f1"]}
            if "ferplus_accuracy" in val:
                record.update(val_ferplus_accuracy=val["ferplus_accuracy"],
                              val_ferplus_cross_entropy=val["ferplus_cross_entropy"],
                              val_agreement=(val["accuracy"] + val["ferplus_accuracy"]) / 2)
            if extra:
                held = validate(accelerator, eval_model, extra_loader, extra[2], extra[3], pre, metric, config.labels)
                record.update(extra_accuracy=held["accuracy"], extra_balanced_accuracy=held["balanced_accuracy"],
                              val_combined=(val["accuracy"] + held["balanced_accuracy"]) / 2)
            record.update(lr=optimizer.param_groups[0]["lr"], seconds=round(time.time() - started, 1), device=hardware)
            improved = progress.update(record[args.monitor], args.monitor == "val_loss", args.min_delta)
            progress.history.append(record)
            progress.epoch, progress.step = epoch + 1, 0
            if is_main:
                if improved:
                    save_pretrained(accelerator.unwrap_model(eval_model), config, out, getattr(torch, args.save_dtype))
                (out / HISTORY_FILE).write_text("".join(json.dumps(r) + "\n" for r in progress.history))
            accelerator.log(record, step=epoch + 1)
            if budget:
                moved = budget.fit(scheduler, progress.epoch, steps_per_epoch)
                if accelerator.num_processes > 1:  # every process follows the main one's clock
                    scheduler.t_initial = broadcast_object_list([scheduler.t_initial])[0]
                if moved:
                    accelerator.print(f"time budget: the schedule now ends at epoch {epochs(scheduler, steps_per_epoch)}")
            accelerator.print(f"epoch {epoch + 1}: train loss {train_loss:.4f} acc {train_accuracy:.4f} | "
                              f"val loss {val['loss']:.4f} acc {val['accuracy']:.4f} F1 {val['macro_f1']:.4f}"
                              + (f" FER+ {val['ferplus_accuracy']:.4f}" if "ferplus_accuracy" in val else "")
                              + (f" | extra acc {record['extra_accuracy']:.4f} balanced "
                                 f"{record['extra_balanced_accuracy']:.4f}" if extra else "")
                              + f"{' *' if improved else ''} ({record['seconds']}s)")
            if progress.epoch % args.checkpoint_every == 0 or progress.epoch >= epochs(scheduler, steps_per_epoch):
                save_checkpoint()
    if progress.bad_epochs >= args.patience:
        accelerator.print(f"early stop: {args.monitor} did not improve for {args.patience} epochs")
    accelerator.end_training()

    results = {}
    if is_main and args.skip_finish:
        accelerator.print(f"--skip-finish: {out} holds the weights and {HISTORY_FILE}; finish it with "
                          f"python -m train.finish {out} --dataset DATASET")
    elif is_main:
        quantize_faces = range_faces(data["train"], pre.image_size, faces=face_mode)
        results = finish_run(out, data["validation"], progress.history, command=(out / COMMAND_FILE).read_text(),
                             base=base, faces=face_mode,
                             dataset=args.dataset, fine_tuned_from=args.init_from, teachers=args.teacher,
                             split_sizes={"train": len(train_y), "validation": len(val_y)}, limit=args.limit_val,
                             quantize_faces=quantize_faces, real_split=extra_data["calibration"] if extra else None)
        if args.push_to_hub:
            url = push_to_hub(out, args.hub_model_id, private=args.hub_private,
                              commit_message=f"Train: validation accuracy {results['accuracy']:.4f}")
            print(f"pushed to {url}")
    return results


@torch.inference_mode()
def validate(accelerator, model, loader, val_x, val_y, pre, metric, labels, votes=None) -> dict:
    """Validation loss and metrics, gathered across processes; with FER+'s `votes` for the faces, how the
    (uncalibrated) probabilities read against the raters (`train.ferplus.agreement`)."""
    model.eval()
    losses, probabilities, order = [], [], []
    for (idx,) in loader:
        with accelerator.autocast():
            inputs = center_crop(normalize(val_x[idx], pre), pre.input_size)
            logits = model(inputs.contiguous(memory_format=torch.channels_last)).float()
        loss = F.cross_entropy(logits, val_y[idx], reduction="none")
        predictions, references, loss, p, idx = accelerator.gather_for_metrics(
            (logits.argmax(1), val_y[idx], loss, logits.softmax(1), idx))
        metric.add_batch(predictions=predictions.cpu(), references=references.cpu())
        losses.append(loss.cpu())
        probabilities.append(p.cpu())
        order.append(idx.cpu())
    raters = agreement(torch.cat(probabilities).numpy(), votes[torch.cat(order).numpy()]) if votes is not None else {}
    return {"loss": torch.cat(losses).mean().item(), **metric.compute(labels=list(labels)), **raters}


def default_mixed_precision() -> str:
    """bf16 on GPUs and CPUs with native bf16 support (AVX512-BF16 or AMX): about twice as fast, as accurate."""
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    return "bf16" if torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported() else "no"


@dataclass
class Teacher:
    """A trained model whose softened probabilities the student learns from."""

    model: torch.nn.Module
    preprocessing: PreprocessConfig

    @classmethod
    def load(cls, source: str, device: torch.device) -> "Teacher":
        model, config = load_pretrained(source)
        return cls(model.to(device).eval().requires_grad_(False), config.preprocessing)

    def probabilities(self, faces: torch.Tensor, temperature: float) -> torch.Tensor:
        """Softened probabilities for float faces (N, H, W) on the 0..255 scale, resized to this teacher's input."""
        size = self.preprocessing.input_size
        if faces.shape[-1] != size:
            faces = F.interpolate(faces.unsqueeze(1), size=(size, size), mode="bilinear", antialias=True).squeeze(1)
        return (self.model(normalize(faces, self.preprocessing)).float() / temperature).softmax(dim=1)


def distillation_loss(logits: torch.Tensor, faces: torch.Tensor, teachers: list[Teacher],
                      temperature: float) -> torch.Tensor:
    """Per face, the KL divergence from the teachers' averaged softened probabilities, scaled by temperature^2
    (Hinton et al.)."""
    with torch.no_grad():
        target = torch.stack([t.probabilities(faces, temperature) for t in teachers]).mean(dim=0)
    log_student = F.log_softmax(logits.float() / temperature, dim=1)
    return F.kl_div(log_student, target, reduction="none").sum(1) * temperature ** 2


def _has_tensorboard() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


if __name__ == "__main__":
    main()
