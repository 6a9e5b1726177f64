"""Supervised fine-tuning with the project's Megatron trainer: `run_sft`, the `mc-sft` command and the tiny
default's warm start."""
