"""Controlled RL studies, `mc-study`: a study file expands into runs (grid or listed points x seeds) that
are planned, launched (locally or on Slurm), followed and compared in one report."""
