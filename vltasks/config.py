"""Config schema (typed dataclasses) and loading: built-in YAML or a path, `_base_` inheritance,
dotted overrides. An unknown key or a wrong type is an error naming the key and the valid choices.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, OmegaConfBaseException, ValidationError


class ConfigError(ValueError):
    """A config problem, phrased for the person who wrote the config."""


@dataclass
class FusionConfig:
    layers: int = 2
    heads: int = 4
    width: Optional[int] = None  # noqa: UP045 (OmegaConf needs Optional)


@dataclass
class BackboneConfig:
    name: Optional[str] = None  # noqa: UP045  adapter family: vilt | clip (inferred when unset)
    pretrained: Optional[str] = None  # noqa: UP045  hub name or local directory
    preset: Optional[str] = None  # noqa: UP045  tiny random preset when pretrained is unset
    vocab_size: Optional[int] = None  # noqa: UP045  tokenizer size for presets
    preset_args: dict[str, Any] = field(default_factory=dict)  # override preset fields (e.g. patch_size)
    freeze: bool = False
    fusion: FusionConfig = field(default_factory=FusionConfig)


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
    options: dict[str, Any] = field(default_factory=dict)


DATA_DEFAULTS = {"batch_size": 32, "num_workers": 2, "on_bad_sample": "error"}


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
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


CHOICES = {"optim.schedule": ("cosine", "linear", "constant")}


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
    """`backbone=vilt_tiny` names a preset, `backbone=<hub name or dir>` a pretrained model."""
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
        else:
            out.append(o)
    return out


def load_config(name_or_path: str, overrides: list[str] | None = None) -> DictConfig:
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(Config), _load_yaml(_find(name_or_path)))
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(_expand_shorthand(list(overrides or []))))
    except OmegaConfBaseException as e:
        raise _explain(e) from None
    validate(cfg)
    return cfg


def validate(cfg: DictConfig) -> None:
    """Checks that need the registries: names of heads, formats, presets, and enumerated choices."""
    from vltasks.backbones import BACKBONES, PRESETS
    from vltasks.datamodules import READERS
    from vltasks.heads import HEADS

    if not cfg.tasks:
        raise ConfigError("config has no tasks: add tasks.<name>.head (e.g. tasks.vqa.head=vqa)")
    for name, task in cfg.tasks.items():
        if task.head not in HEADS:
            raise ConfigError(
                f"tasks.{name}.head: unknown head {task.head!r}; valid: {', '.join(HEADS.names())}"
            )
        fmt = task_data(cfg, name)["format"]
        if fmt not in READERS:
            raise ConfigError(
                f"tasks.{name}.data.format: unknown format {fmt!r}; valid: {', '.join(READERS.names())}"
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
    for key, choices in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(choices)}")
    for name in cfg.tasks:
        policy = task_data(cfg, name)["on_bad_sample"]
        if policy not in ("error", "skip"):
            raise ConfigError(f"data.on_bad_sample: {policy!r} is not one of error, skip")


def task_data(cfg: DictConfig, name: str) -> dict[str, Any]:
    """A task's data settings: its own values over the shared `data` values over the defaults."""
    shared = OmegaConf.to_container(cfg.data, resolve=True)
    own = OmegaConf.to_container(cfg.tasks[name].data, resolve=True)
    out = dict(DATA_DEFAULTS)
    for src in (shared, own):
        for k, v in src.items():
            if k == "options":
                out["options"] = {**out.get("options", {}), **v}
            elif v is not None:
                out[k] = v
    out.setdefault("options", {})
    return out


def to_plain(cfg: DictConfig) -> dict[str, Any]:
    """Plain containers (checkpoints must load under torch's weights_only default)."""
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
