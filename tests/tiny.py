"""Shared by the end-to-end tests: overrides for a tiny backbone and a one-epoch run that CI
affords, and where the CLI said it wrote a run."""

from pathlib import Path

BACKBONE = [
    "backbone.preset_args.hidden_size=32",
    "backbone.preset_args.num_layers=1",
    "backbone.preset_args.num_heads=2",
    "backbone.preset_args.intermediate_size=64",
]
SHORT_RUN = [
    *BACKBONE,
    "data.batch_size=4",
    "data.eval_batch_size=5",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",  # a demo may validate every few epochs; one epoch must validate
    "trainer.enable_progress_bar=false",
    "logging.num_images=1",
]


def printed_run_dir(out: str) -> Path:
    """The run directory the CLI printed (``run directory: <path>``)."""
    return Path(out.split("run directory: ")[1].split()[0])
