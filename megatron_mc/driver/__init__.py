"""The driver of `mc-train`: the session (Ray, placement, judge, engines, train actors), the RL step loop,
checkpoints and resume, evaluation hooks, and the command line."""
