"""rollout: generation for RL. Engines (SGLang, or the embedded engine on CPU) under Ray behind a router,
the async client, weight sync into the engines, the temperature controller, and the Sample contract.

Where things are:
  sample.py          Sample (one response) and group_by_problem
  config.py          RolloutConfig
  prompts.py         PromptBuilder: problem -> chat messages -> prompt ids
  client.py          SGLangClient: /generate with return_logprob, abort, retries
  manager.py         RolloutManager: problems -> judged, dynamically sampled batch + metrics
  rewards.py         JudgeReward: extraction + judge pool -> reward, verdict
  launch_args.py     engine server command lines (sglang.launch_server / rollout.embedded_server)
  sglang_engine.py   EngineActor: one engine server process, restarted on crash
  engine_fleet.py    EngineFleet: the engine actors + router; pause/flush/continue, weight updates
  router.py          Router: sglang-router or balancer.py (least outstanding requests)
  placement.py       Ray placement groups, colocated or disaggregated
  weight_sync/       disk, tensor, distributed transports, chosen by name
  embedded_engine.py / embedded_server.py   HF transformers engine speaking SGLang's HTTP API
  diversity.py / temperature.py             MicroCoder's diversity-determined temperature
"""
