"""Config schema (typed dataclasses) and loading: built-in YAML or a path, `_base_` inheritance,
dotted overrides. An unknown key or a wrong type is an error naming the key and the valid choices.

A config is resolved once (`load_run`) into a `RunSpec`: the validated OmegaConf config plus one
`TaskSpec` per task whose `DataSpec` holds the task's data settings already merged (its own `data`
over the shared `data` over `DATA_DEFAULTS`). Everything downstream reads the spec, not the YAML.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError


class ConfigError(ValueError):
    """A config problem, phrased for the person who wrote the config."""


@dataclass
class FusionConfig:
    layers: int = 2
    heads: int = 4
    width: Optional[int] = None  # noqa: UP045 (OmegaConf needs Optional)


@dataclass
class VideoConfig:
    """How a backbone reads clips (built when a task's reader gives clips)."""

    max_frames: int = 8  # frames (or feature time steps) a clip may have: one temporal embedding each
    tokens_per_frame: Optional[int] = None  # noqa: UP045  cap per frame ([CLS] + pooled patches); None: all
    feature_dim: Optional[int] = None  # noqa: UP045  width of pre-extracted features, when clips come as files
    temporal_init: str = "normal"  # normal (std 0.02, as CLIP4Clip) | sincos (1D sin-cos: from scratch)


@dataclass
class BackboneConfig:
    # adapter family (vilt | clip | blip); unset: the preset's, or config.json's model_type
    name: Optional[str] = None  # noqa: UP045
    pretrained: Optional[str] = None  # noqa: UP045  hub name or local directory
    preset: Optional[str] = None  # noqa: UP045  tiny random preset when pretrained is unset
    vocab_size: Optional[int] = None  # noqa: UP045  tokenizer size for presets
    preset_args: dict[str, Any] = field(default_factory=dict)  # override preset fields (e.g. patch_size)
    freeze: bool = False
    # parts no head of the run reads (ViLT's pooler for token grounding, BLIP's decoder for retrieval)
    # are frozen, so DDP needs no search for unused parameters (docs/design-notes.md, 46)
    freeze_unused: bool = True
    # recompute each backbone layer's activations in the backward pass: memory for compute
    activation_checkpointing: bool = False
    fusion: FusionConfig = field(default_factory=FusionConfig)
    video: VideoConfig = field(default_factory=VideoConfig)


@dataclass
class DataConfig:
    """Shared data settings; each task's `data` may override any of them."""

    format: Optional[str] = None  # noqa: UP045
    root: Optional[str] = None  # noqa: UP045
    train_split: Optional[str] = None  # noqa: UP045
    val_split: Optional[str] = None  # noqa: UP045
    test_split: Optional[str] = None  # noqa: UP045
    predict_split: Optional[str] = None  # noqa: UP045
    batch_size: Optional[int] = None  # noqa: UP045
    eval_batch_size: Optional[int] = None  # noqa: UP045
    num_workers: Optional[int] = None  # noqa: UP045
    on_bad_sample: Optional[str] = None  # noqa: UP045
    # images with more pixels are refused before decoding (decompression bombs); unset: PIL's limit
    max_image_pixels: Optional[int] = None  # noqa: UP045
    options: dict[str, Any] = field(default_factory=dict)


# The one place data settings get their defaults (a task's `data`, then the shared `data`, then these)
DATA_DEFAULTS: dict[str, Any] = {"batch_size": 32, "num_workers": 2, "on_bad_sample": "error"}
STAGE_SPLITS = {"train": "train_split", "val": "val_split", "test": "test_split", "predict": "predict_split"}


@dataclass
class TaskConfig:
    head: str = "vqa"
    head_args: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0
    data: DataConfig = field(default_factory=DataConfig)


@dataclass
class OptimConfig:
    lr: float = 1e-4
    head_lr_mult: float = 10.0
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    warmup: float = 0.1  # fraction of steps (< 1) or a step count
    schedule: str = "cosine"
    min_lr_ratio: float = 0.0


@dataclass
class TrainerConfig:
    max_epochs: int = 10
    max_steps: int = -1
    accelerator: str = "auto"
    devices: Any = "auto"
    num_nodes: int = 1
    strategy: str = "auto"
    precision: str = "32-true"
    default_root_dir: str = "runs"
    log_every_n_steps: int = 10
    check_val_every_n_epoch: int = 1
    gradient_clip_val: Optional[float] = 1.0  # noqa: UP045
    accumulate_grad_batches: int = 1
    limit_train_batches: Optional[float] = None  # noqa: UP045
    limit_val_batches: Optional[float] = None  # noqa: UP045
    enable_progress_bar: bool = True
    deterministic: bool = False


@dataclass
class MultitaskConfig:
    """Which tasks train in each step, what an epoch is, and what picks the best checkpoint."""

    sampling: str = "all"  # all | round_robin | proportional (to dataset size) | temperature
    temperature: float = 2.0  # sampling=temperature: P(task) proportional to size ** (1 / temperature)
    # proportional / temperature: a factor on a task's probability (tasks not named: 1), e.g. {refcoco: 2}
    weights: dict[str, float] = field(default_factory=dict)
    # steps in an epoch; unset: the longest task's batches (sampling=all), else every task's summed
    steps_per_epoch: Optional[int] = None  # noqa: UP045
    # "task/metric" keys whose mean is logged as val/aggregate and selects best.ckpt; empty: each
    # task's own monitored metric (when the run has several tasks)
    monitor: list[str] = field(default_factory=list)
    monitor_mode: Optional[str] = None  # noqa: UP045  max | min; unset: the heads' own (they must agree)


@dataclass
class CheckpointConfig:
    # also rewrite last.ckpt every N optimizer steps, so `fit --ckpt last.ckpt` resumes mid-epoch
    every_n_steps: Optional[int] = None  # noqa: UP045


@dataclass
class LoggingConfig:
    num_images: int = 8  # examples drawn with question, prediction and answers per validation


@dataclass
class SyntheticConfig:
    """Write the synthetic world in each task's format under its data.root when files are absent."""

    enabled: bool = False
    train: int = 2000  # images per split (2-4 questions each for VQA)
    val: int = 500
    test: int = 0  # question-only split (the predict split)
    seed: int = 0
    image_size: int = 64


@dataclass
class Config:
    name: str = "run"
    seed: int = 0
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    multitask: MultitaskConfig = field(default_factory=MultitaskConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


def choices() -> dict[str, tuple[str, ...]]:
    """Enumerated settings and their values, defined by the code that uses them."""
    from vltasks.datamodules.base import ON_BAD_SAMPLE
    from vltasks.datamodules.datamodule import SAMPLINGS
    from vltasks.tasks.optim import SCHEDULES

    return {
        "optim.schedule": SCHEDULES,
        "data.on_bad_sample": ON_BAD_SAMPLE,
        "multitask.sampling": SAMPLINGS,
        "multitask.monitor_mode": ("max", "min"),
    }


@dataclass(frozen=True)
class DataSpec:
    """One task's data settings, resolved."""

    format: str
    root: str | None
    splits: dict[str, str | None]  # stage (train, val, test, predict) -> the format's split name
    batch_size: int
    eval_batch_size: int
    num_workers: int
    on_bad_sample: str
    options: dict[str, Any]
    max_image_pixels: int | None = None  # None: the readers' default (datamodules/media.py)

    def split(self, stage: str) -> str | None:
        return self.splits.get(stage)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    head: str
    head_args: dict[str, Any]  # what the user set (what the reader learns is kept apart: data_args)
    weight: float
    data: DataSpec


@dataclass(frozen=True)
class RunSpec:
    """The resolved run: the validated config and one spec per task."""

    config: DictConfig
    tasks: dict[str, TaskSpec]

    def plain(self) -> dict[str, Any]:
        return to_plain(self.config)

    @property
    def synthetic(self) -> bool:
        return bool(self.config.synthetic.enabled)


def builtin_configs() -> list[str]:
    return sorted(
        p.name[:-5] for p in resources.files("vltasks.configs").iterdir() if p.name.endswith(".yaml")
    )


def _find(name_or_path: str, here: Path | None = None) -> Path:
    p = Path(name_or_path)
    candidates = [p, p.with_suffix(".yaml")] if p.suffix != ".yaml" else [p]
    if here is not None and not p.is_absolute():
        candidates += [here / c for c in candidates]
    for c in candidates:
        if c.is_file():
            return c
    builtin = resources.files("vltasks.configs") / f"{p.stem}.yaml"
    if builtin.is_file():
        return Path(str(builtin))
    raise ConfigError(f"config {name_or_path!r} not found; built-in configs: {', '.join(builtin_configs())}")


def _load_yaml(path: Path, seen: tuple[Path, ...] = ()) -> DictConfig:
    if path in seen:
        raise ConfigError(f"{path}: _base_ cycle through {[str(s) for s in seen]}")
    node = OmegaConf.load(path)
    bases = node.pop("_base_", None)
    merged = OmegaConf.create()
    for base in [bases] if isinstance(bases, str) else list(bases or []):
        merged = OmegaConf.merge(merged, _load_yaml(_find(base, path.parent), (*seen, path)))
    return OmegaConf.merge(merged, node)


def _schema_at(key: str) -> type | None:
    """The dataclass a dotted key points into, to list its valid fields in an error."""
    cls: Any = Config
    parts = key.split(".")[:-1]
    i = 0
    while i < len(parts):
        if not dataclasses.is_dataclass(cls):
            return None
        if cls is Config and parts[i] == "tasks":
            cls, i = TaskConfig, i + 2  # tasks.<name> is a TaskConfig
            continue
        ftype = {f.name: f.type for f in dataclasses.fields(cls)}.get(parts[i])
        cls = globals().get(ftype) if isinstance(ftype, str) else ftype
        i += 1
    return cls if dataclasses.is_dataclass(cls) else None


def _explain(e: OmegaConfBaseException) -> ConfigError:
    key = getattr(e, "full_key", None) or "?"
    if isinstance(e, (ConfigKeyError, ConfigAttributeError)):
        schema = _schema_at(key)
        valid = (
            ", ".join(f.name for f in dataclasses.fields(schema)) if schema else "see the built-in configs"
        )
        return ConfigError(f"unknown config key '{key}'; valid keys here: {valid}")
    if isinstance(e, ValidationError):
        msg = re.sub(r"\s*full_key:.*", "", str(e), flags=re.S).strip()
        return ConfigError(f"config key '{key}': {msg}")
    return ConfigError(f"config key '{key}': {e}")


def _expand_shorthand(overrides: list[str]) -> list[str]:
    """`backbone=vilt_tiny` names a preset, `backbone=<hub name or dir>` a pretrained model (whose
    family then comes from its config.json unless `backbone.name` is also given)."""
    named = any(o.split("=", 1)[0] == "backbone.name" for o in overrides)
    out = []
    for o in overrides:
        if "=" not in o:
            raise ConfigError(f"override {o!r} is not of the form dotted.key=value")
        key, value = o.split("=", 1)
        if key == "backbone":
            from vltasks.backbones import PRESETS

            if value in PRESETS:
                out += [
                    f"backbone.preset={value}",
                    "backbone.pretrained=null",
                    f"backbone.name={PRESETS[value]['family']}",
                ]
            else:
                out += [f"backbone.pretrained={value}", "backbone.preset=null"]
                out += [] if named else ["backbone.name=null"]
        else:
            out.append(o)
    return out


def load_run(name_or_path: str, overrides: list[str] | None = None) -> RunSpec:
    """Load, merge, resolve and validate a config: the one entry point of every run."""
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(Config), _load_yaml(_find(name_or_path)))
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(_expand_shorthand(list(overrides or []))))
    except OmegaConfBaseException as e:
        raise _explain(e) from None
    if not cfg.tasks:
        raise ConfigError("config has no tasks: add tasks.<name>.head (e.g. tasks.vqa.head=vqa)")
    spec = resolve(cfg)
    validate(spec)
    return spec


def load_config(name_or_path: str, overrides: list[str] | None = None) -> DictConfig:
    """The validated config alone (`load_run(...).config`)."""
    return load_run(name_or_path, overrides).config


def resolve(cfg: DictConfig | dict[str, Any]) -> RunSpec:
    """Per-task specs from a merged config (or the plain config a checkpoint holds)."""
    if not isinstance(cfg, DictConfig):
        cfg = OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(cfg))
    tasks = {
        name: TaskSpec(
            name=name,
            head=task.head,
            head_args=dict(to_plain(task.head_args)),
            weight=float(task.weight),
            data=_data_spec(cfg, name),
        )
        for name, task in cfg.tasks.items()
    }
    return RunSpec(config=cfg, tasks=tasks)


def _data_spec(cfg: DictConfig, name: str) -> DataSpec:
    """A task's data settings: its own values over the shared `data` values over DATA_DEFAULTS."""
    merged: dict[str, Any] = {**DATA_DEFAULTS, "options": {}}
    for src in (to_plain(cfg.data), to_plain(cfg.tasks[name].data)):
        for k, v in src.items():
            if k == "options":
                merged["options"] = {**merged["options"], **v}
            elif v is not None:
                merged[k] = v
    return DataSpec(
        format=merged.get("format"),
        root=merged.get("root"),
        splits={stage: merged.get(key) for stage, key in STAGE_SPLITS.items()},
        batch_size=int(merged["batch_size"]),
        eval_batch_size=int(merged.get("eval_batch_size") or merged["batch_size"]),
        num_workers=int(merged["num_workers"]),
        on_bad_sample=merged["on_bad_sample"],
        options=merged["options"],
        max_image_pixels=merged.get("max_image_pixels"),
    )


def validate(spec: RunSpec) -> None:
    """Checks that need the registries: names of heads, formats, presets, enumerated choices, and
    that the backbone family can serve every head (before any download or tokenizer training)."""
    from vltasks.backbones import BACKBONES, PRESETS, check_buildable, family_of
    from vltasks.datamodules import READERS
    from vltasks.heads import HEADS

    cfg = spec.config
    enumerated = choices()
    for name, task in spec.tasks.items():
        if task.head not in HEADS:
            raise ConfigError(
                f"tasks.{name}.head: unknown head {task.head!r}; valid: {', '.join(HEADS.names())}"
            )
        if task.data.format not in READERS:
            raise ConfigError(
                f"tasks.{name}.data.format: unknown format {task.data.format!r}; "
                f"valid: {', '.join(READERS.names())}"
            )
        if task.data.on_bad_sample not in enumerated["data.on_bad_sample"]:
            raise ConfigError(
                f"data.on_bad_sample: {task.data.on_bad_sample!r} is not one of "
                f"{', '.join(enumerated['data.on_bad_sample'])}"
            )
    bb = cfg.backbone
    if bb.preset is not None and bb.preset not in PRESETS:
        raise ConfigError(
            f"backbone.preset: unknown preset {bb.preset!r}; valid: {', '.join(sorted(PRESETS))}"
        )
    if bb.name is not None and bb.name not in BACKBONES:
        raise ConfigError(
            f"backbone.name: unknown backbone {bb.name!r}; valid: {', '.join(BACKBONES.names())}"
        )
    if not bb.preset and not bb.pretrained:
        raise ConfigError(
            "backbone: set backbone.pretrained=<hub name or dir> or backbone.preset (e.g. vilt_tiny)"
        )
    for key, value in (
        ("optim.schedule", cfg.optim.schedule),
        ("multitask.sampling", cfg.multitask.sampling),
        ("multitask.monitor_mode", cfg.multitask.monitor_mode),
    ):
        if value is not None and value not in enumerated[key]:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(enumerated[key])}")
    _validate_scale(spec)
    try:
        family = family_of(to_plain(bb), offline=True)
        if family is not None:
            for name, task in spec.tasks.items():
                check_buildable(family, set(HEADS.get(task.head).needs), who=f"tasks.{name}.head={task.head}")
                fmt = READERS.get(task.data.format)
                check_buildable(family, set(fmt.needs), who=f"tasks.{name}.data.format={task.data.format}")
    except ValueError as e:
        raise ConfigError(str(e)) from None


FSDP_PRECISIONS = ("32-true", "bf16-mixed", "bf16-true")  # what Lightning's ModelParallelStrategy takes


def _validate_scale(spec: RunSpec) -> None:
    """Multitask sampling, the aggregate monitor, step counts and the strategy/precision pair."""
    cfg = spec.config
    mt = cfg.multitask
    if mt.sampling == "temperature" and not mt.temperature > 0:
        raise ConfigError(f"multitask.temperature: must be > 0, got {mt.temperature}")
    weights = dict(mt.weights or {})
    if weights:
        from vltasks.datamodules.datamodule import weights_problem

        problem = weights_problem(weights, list(spec.tasks))
        if problem:
            raise ConfigError(problem)
        if mt.sampling not in ("proportional", "temperature"):  # e.g. a demo's weights, sampling=all
            logging.getLogger("vltasks").warning(
                "multitask.weights %s have no effect with multitask.sampling=%s: they scale the "
                "probabilities of drawn tasks (proportional, temperature)",
                weights,
                mt.sampling,
            )
    for key, value in (
        ("multitask.steps_per_epoch", mt.steps_per_epoch),
        ("checkpoint.every_n_steps", cfg.checkpoint.every_n_steps),
    ):
        if value is not None and value < 1:
            raise ConfigError(f"{key}: must be a positive step count or unset, got {value}")
    for key in mt.monitor:
        task = str(key).split("/", 1)[0]
        if "/" not in str(key) or task not in spec.tasks:
            raise ConfigError(
                f"multitask.monitor: {key!r} is not 'task/metric' with a task of this run "
                f"({', '.join(spec.tasks)}), e.g. '{next(iter(spec.tasks))}/accuracy'"
            )
    for name, task in spec.tasks.items():
        if not task.weight >= 0:
            raise ConfigError(f"tasks.{name}.weight: a loss weight must be >= 0, got {task.weight}")
    strategy, precision = str(cfg.trainer.strategy), str(cfg.trainer.precision)
    if strategy == "fsdp" and precision not in FSDP_PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision} with trainer.strategy=fsdp: use one of "
            f"{', '.join(FSDP_PRECISIONS)} (FSDP here is FSDP2 through Lightning's ModelParallelStrategy, "
            "which has no fp16 gradient scaler)"
        )


def to_plain(cfg: Any) -> Any:
    """Plain containers (checkpoints must load under torch's weights_only default)."""
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig | ListConfig) else cfg
