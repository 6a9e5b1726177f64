"""The difficulty histogram, before and after selection, as a PNG (matplotlib's Agg backend: no display).

Numbers (a pass rate, a weighted score) are drawn as two overlaid histograms on shared bins; labels
(difficulty buckets) as side-by-side bars. What is drawn is chosen by statistics.histogram_data.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend
import numpy as np  # noqa: E402

from megatron_mc.data.pipeline.jsonl import write_atomic  # noqa: E402

NUMERIC_BINS = 10


@dataclass(frozen=True)
class HistogramData:
    basis: str                        # what the values are: an annotation key, or the bucket labels
    before: list[float] | list[str]
    after: list[float] | list[str]
    unscored: int = 0                 # problems before selection that have no value of `basis`
    value_range: tuple[float, float] | None = None  # numeric axis; None: the values' own range


def write_histogram(data: HistogramData, path: str | Path) -> None:
    figure, axis = plt.subplots(figsize=(7, 4), dpi=100)
    try:
        if all(isinstance(v, str) for v in (*data.before, *data.after)):
            _bars(axis, data)
        else:
            _numeric(axis, data)
        note = f" ({data.unscored} problems without it)" if data.unscored else ""
        axis.set_title(f"Difficulty before and after selection: {data.basis}{note}", fontsize=10)
        axis.set_ylabel("problems")
        axis.legend()
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
    finally:
        plt.close(figure)
    write_atomic(path, buffer.getvalue())


def _numeric(axis, data: HistogramData) -> None:
    values = [*data.before, *data.after]
    low, high = data.value_range or (min(values), max(values))
    if high <= low:
        low, high = low - 0.5, high + 0.5
    bins = np.linspace(low, high, NUMERIC_BINS + 1)
    axis.hist(data.before, bins=bins, alpha=0.5, label=f"before ({len(data.before)})")
    axis.hist(data.after, bins=bins, alpha=0.7, label=f"after ({len(data.after)})")
    axis.set_xlabel(data.basis)


def _bars(axis, data: HistogramData) -> None:
    labels = list(dict.fromkeys([*data.before, *data.after]))
    x = np.arange(len(labels))
    width = 0.4
    axis.bar(x - width / 2, [data.before.count(k) for k in labels], width, label=f"before ({len(data.before)})")
    axis.bar(x + width / 2, [data.after.count(k) for k in labels], width, label=f"after ({len(data.after)})")
    axis.set_xticks(x, labels)
    axis.set_xlabel(data.basis)
