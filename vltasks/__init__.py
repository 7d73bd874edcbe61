"""vltasks: finetune one shared vision-language backbone on many tasks, with official metrics."""

__version__ = "0.1.0"
