"""kmedqa: reproducible QLoRA fine-tuning and honest evaluation on (Korean) medical QA."""

__version__ = "0.1.0"
