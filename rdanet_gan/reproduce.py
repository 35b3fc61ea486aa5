"""Reproduce Table 1: train the four models on one split, evaluate them on its test images.

``reproduce`` is resumable: rerun it with the same output folder and every
finished model is kept, an interrupted one continues from its last epoch.
RDA-NET-GAN's generator starts from the trained RDAU-Net, as in the paper.
Each model is evaluated at its best validation Dice (``best.keras``): model
selection uses the validation split only; the test split is read once per model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from rdanet_gan.data import DataSplits, prepare_data, save_split
from rdanet_gan.errors import DataError
from rdanet_gan.evaluation.evaluate import evaluate_model
from rdanet_gan.evaluation.report import table1_csv, table1_markdown
from rdanet_gan.evaluation.scoring import Evaluation
from rdanet_gan.fileio import write_text
from rdanet_gan.inference.model_files import load_segmenter
from rdanet_gan.training.config import TrainConfig
from rdanet_gan.training.run_folder import run_finished
from rdanet_gan.training.trainer import train

# Training order (the GAN needs the trained RDAU-Net) and the paper's row names.
TABLE1_MODELS = {"rdau-net": "RDAU-NET", "rdanet-gan": "RDA-NET-GAN", "unet": "U-Net", "segnet": "SegNet"}
GAN_ROW = TABLE1_MODELS["rdanet-gan"]
"""The row every other model is compared with, paired on the same test scans."""
FIGURE_SCANS = 4


def train_and_evaluate(config: TrainConfig, run_dir: Path, data: DataSplits, verbose: int | str = "auto") -> Evaluation:
    """Train one model unless its run is finished, then score its best checkpoint on the test split."""
    if not run_finished(run_dir, config.epochs):
        train(config, run_dir, resume=(run_dir / "config.json").exists(), data=data, verbose=verbose)
    evaluation = evaluate_model(load_segmenter(run_dir / "best.keras"), data.test, batch_size=config.batch_size)
    evaluation.write_csv(run_dir / "evaluation" / "per_image.csv")
    evaluation.write_json(run_dir / "evaluation" / "summary.json")
    return evaluation


def record_command(path: Path, command: str) -> None:
    """Append ``command`` to the command log at ``path`` unless it is its last line."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    if not lines or lines[-1] != command:
        write_text(path, "\n".join([*lines, command]) + "\n")


def check_models(models: Sequence[str]) -> None:
    """Refuse an empty or unknown selection, and RDA-NET-GAN without the RDAU-Net it starts from."""
    if not models or set(models) - set(TABLE1_MODELS):
        raise ValueError(f"models must be some of {', '.join(TABLE1_MODELS)}, got {', '.join(models) or 'none'}")
    if "rdanet-gan" in models and "rdau-net" not in models:
        raise ValueError("rdanet-gan starts from the trained rdau-net: include rdau-net")


def check_settings(base: TrainConfig, models: Sequence[str]) -> None:
    """Refuse, before any training, shared settings that one of the rows cannot take
    (e.g. deep supervision for SegNet): each row's ``TrainConfig`` validates itself."""
    for model in models:
        dataclasses.replace(base, model=model)


def reproduce(
    base: TrainConfig,
    out: str | Path,
    models: Sequence[str] = tuple(TABLE1_MODELS),
    verbose: int | str = "auto",
    command: str | None = None,
) -> str:
    """Train and evaluate the models of Table 1 into ``out``; return the table as Markdown.

    ``base`` gives the shared settings (data, split, epochs, batch size, image
    size, width, seed, precision); its ``model`` is ignored. ``models`` picks
    rows of the table (all four by default); RDA-NET-GAN needs RDAU-Net.
    ``command``, the command line that asked for the run, is added to
    ``out/command.txt`` unless it is that file's last line already (a resume).
    """
    check_models(models)
    check_settings(base, models)
    out = Path(out)
    if command:
        record_command(out / "command.txt", command)
    split_path = out / "split.json"
    split = str(split_path) if split_path.exists() else base.split
    data = prepare_data(base.data, split, image_size=base.image_size, seed=base.seed, verbose=bool(verbose))
    if not len(data.test):
        raise DataError(split or base.data, "leaves no test scans to score Table 1 on (too few scans, or a split without a test list)")
    if not split_path.exists():
        save_split(data.split, split_path)

    results: dict[str, Evaluation] = {}
    for model, row_name in TABLE1_MODELS.items():
        if model not in models:
            continue
        init = str(out / "rdau-net" / "best.keras") if model == "rdanet-gan" else None
        config = dataclasses.replace(base, model=model, split=str(split_path), init_weights=init)
        results[row_name] = train_and_evaluate(config, out / model, data, verbose)

    from rdanet_gan.evaluation.figures import plot_comparison_grid, plot_dice_distribution  # Matplotlib: here only

    table = table1_markdown(results, reference=GAN_ROW if GAN_ROW in results else None)
    write_text(out / "table1.md", table)
    write_text(out / "table1.csv", table1_csv(results))
    plot_dice_distribution({name: [row["dice"] for row in e.per_image] for name, e in results.items()}, out / "dice_distribution.png")
    images = data.test.images[:FIGURE_SCANS]
    masks = {
        name: list(load_segmenter(out / model / "best.keras").predict(images, verbose=0)[..., 0] > 0.5)
        for model, name in TABLE1_MODELS.items()
        if model in models
    }
    plot_comparison_grid(list(images[..., 0]), list(data.test.masks[: len(images), ..., 0]), masks, out / "fig4_comparison.png")
    return table
