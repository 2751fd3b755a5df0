"""The trainer's command line, shared by `train.train` (which runs it) and `train.finish` (which reads a
run's recorded command), so that neither imports the other's module."""
from __future__ import annotations

import argparse

from .data import DEFAULT_DATASET, PERSONS_HELD_OUT

DESCRIPTION = "Train fer_model.EmotionCNN on FER-2013 with accelerate: CPU, one GPU or many, mixed precision."


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default=DEFAULT_DATASET,
                   help="Kaggle's fer2013.csv, a Hub dataset id (user/name), a parquet folder or an image folder")
    p.add_argument("--output-dir", default="runs/fer")
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                   help="fit the schedule (at most --epochs) to end training within this budget, "
                        "by the measured time per epoch")
    p.add_argument("--batch-size", type=int, default=128, help="per process")
    p.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw", help="sgd is SGD with Nesterov momentum")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-epochs", type=float, default=2.0)
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--balance", choices=["none", "loss", "sampler"], default="none",
                   help="class imbalance: weighted loss or balanced sampling, class weights (mean count / count)^0.5")
    p.add_argument("--ema-decay", type=float, default=0.998, help="0 disables weight EMA")
    p.add_argument("--patience", type=int, default=10, help="epochs without improvement before stopping")
    p.add_argument("--monitor", choices=["val_loss", "val_accuracy", "val_combined", "val_agreement"],
                   default="val_loss",
                   help="val_combined: the mean of validation accuracy and --extra-dataset's held-out balanced "
                        "accuracy; val_agreement: the mean of validation accuracy and FER+ majority accuracy")
    p.add_argument("--min-delta", type=float, default=0.0, help="smallest change of --monitor that counts as better")
    p.add_argument("--vote-mix", type=float, default=0.0, metavar="W",
                   help="learn W of FER+'s ten raters' vote shares and 1 - W of FER-2013's label per face "
                        "(train.ferplus; the dataset folder's ferplus/ votes); 0: the labels alone")
    p.add_argument("--widths", default="32,64,128,256", help="channels per stage")
    p.add_argument("--convs-per-stage", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.4)
    p.add_argument("--mixup", type=float, default=0.0, help="mixup alpha (0 disables)")
    p.add_argument("--cutmix", type=float, default=0.0,
                   help="cutmix alpha (0 disables); with --mixup too, each batch gets one of the two")
    p.add_argument("--crop-size", type=int, default=None,
                   help="train on random crops of this side (e.g. 44) of the 48 px faces; evaluate on the centre or ten crops")
    p.add_argument("--init-from", default=None, metavar="MODEL",
                   help="fine-tune: start from this model folder or Hub id, its architecture and preprocessing "
                        "(--widths, --convs-per-stage, --hidden, --dropout and --crop-size are then ignored)")
    p.add_argument("--own-labels", action="store_true",
                   help="train a head for the data's own classes even where they are some of FER-2013's (by default "
                        "such a folder keeps the 7-class head; classes FER-2013 lacks always get a head of their own)")
    p.add_argument("--faces", choices=["auto", "crop", "whole"], default="auto",
                   help="crop: find the face in each image as predict does (one face, else the image is skipped); "
                        "whole: resize each image whole; auto: crop in image folders, whole in datasets")
    p.add_argument("--extra-dataset", default=None, metavar="DATASET",
                   help="labelled faces of other sources (a `subject` column naming each person) to train on beside "
                        "--dataset, cropped as predict crops them; split by person (train.data.person_splits): "
                        "half of the held-out persons validate, the other half are never seen")
    p.add_argument("--extra-held-out", type=float, default=PERSONS_HELD_OUT,
                   help="share of --extra-dataset's images (whole persons) held out")
    p.add_argument("--extra-repeat", type=int, default=1, help="times each --extra-dataset face comes in an epoch")
    p.add_argument("--extra-balance", action="store_true",
                   help="weight --extra-dataset's faces by class, (mean count / count)^0.5 within it: its rare "
                        "classes count as much as in a balanced set, half-way")
    p.add_argument("--extra-label-smoothing", type=float, default=0.2,
                   help="label smoothing of --extra-dataset's (noisier) labels")
    p.add_argument("--capture", type=float, default=0.0, metavar="P",
                   help="probability of each capture degradation per face: gamma, blur, lower resolution, aspect, "
                        "sensor noise and JPEG compression (0 disables)")
    p.add_argument("--teacher", nargs="+", default=[], metavar="MODEL",
                   help="distil from these model folders or Hub ids (their softened probabilities are averaged); "
                        "--dataset's faces are distilled, --extra-dataset's learn from their labels")
    p.add_argument("--kd-extra", action="store_true",
                   help="distil --extra-dataset's faces too, as --dataset's (several teachers into one model)")
    p.add_argument("--kd-temperature", type=float, default=4.0, help="softening temperature of distillation")
    p.add_argument("--kd-weight", type=float, default=0.7,
                   help="weight of the distillation loss; the label loss gets 1 - this")
    p.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default=None,
                   help="default: bf16 where the GPU or CPU supports it, else no")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the model (slower for these small CNNs on an H100, see README)")
    p.add_argument("--save-dtype", choices=["float32", "float16"], default="float16", help="dtype of saved weights")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue from --output-dir/checkpoint")
    p.add_argument("--checkpoint-every", type=int, default=1, metavar="EPOCHS",
                   help="save the resumable state every this many epochs (always on SIGINT/SIGTERM and at the end)")
    p.add_argument("--limit-train", type=int, default=None, help="use only this many training images")
    p.add_argument("--limit-val", type=int, default=None, help="use only this many validation images")
    p.add_argument("--skip-finish", action="store_true",
                   help="write the weights and metrics.jsonl only, no calibration, int8 or card (teachers on a "
                        "machine to bring back from); `python -m train.finish` completes the folder later")
    p.add_argument("--push-to-hub", action="store_true")
    p.add_argument("--hub-model-id", default=None, help="user/name of the model repo to push to")
    p.add_argument("--hub-private", action="store_true")
    args = p.parse_args(argv)
    if (args.mixup or args.cutmix) and args.batch_size % 2:
        p.error("--mixup/--cutmix mix each batch with its mirror: --batch-size must be even")
    if not 0 <= args.vote_mix <= 1:
        p.error("--vote-mix is a share: from 0 to 1")
    if args.vote_mix and (args.mixup or args.cutmix):
        p.error("--vote-mix does not combine with --mixup/--cutmix (both make each face's target)")
    if args.monitor == "val_combined" and not args.extra_dataset:
        p.error("--monitor val_combined needs --extra-dataset")
    if args.kd_extra and not (args.teacher and args.extra_dataset):
        p.error("--kd-extra needs --teacher and --extra-dataset")
    if args.push_to_hub and args.skip_finish:
        p.error("--push-to-hub needs the finished folder: leave out --skip-finish")
    if args.push_to_hub and not args.hub_model_id:
        p.error("--push-to-hub needs --hub-model-id user/name")
    return args
