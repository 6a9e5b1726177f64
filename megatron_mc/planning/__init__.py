"""`--dry-run`: placement, parallel sizes and a per-GPU memory estimate, from the config alone."""
