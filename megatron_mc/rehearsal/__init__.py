"""Rehearsals: a GPU config's run shape on a CPU machine (mc-train --config GPU_CONFIG --rehearse); see run.py."""
