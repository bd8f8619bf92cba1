"""The sweep page's figures, as plotly JSON for ``Plotly.newPlot``: each metric against each swept
parameter, and parallel coordinates of the swept parameters and the metrics.

Written as plotly.js's own figure JSON: plotly's Python ``graph_objects`` validate every property
and cost about 60 ms a figure, too slow for a page that refreshes every 5 s with tens of them."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["metric_plots", "parallel_coordinates"]

_LAYOUT: dict[str, Any] = {
    "font": {"family": "system-ui, sans-serif", "size": 12},
    "margin": {"l": 60, "r": 20, "t": 40, "b": 50},
    "height": 320,
}


def _number(value: Any) -> float | None:
    """A finite number, from a number or a text holding one (a Hydra override kept as text)."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _axis(values: Sequence[Any]) -> tuple[list[Any], dict[str, Any]]:
    """A parameter's values for an axis, and the axis: numbers (on a log scale when they span two
    decades or more, all positive), else categories in the order they first appear."""
    numbers = [_number(v) for v in values]
    if all(n is not None for n in numbers):
        positive = [n for n in numbers if n is not None and n > 0]
        log = len(positive) == len(numbers) and max(positive) / min(positive) >= 100
        return numbers, {"type": "log" if log else "linear"}
    labels = [_label(v) for v in values]
    return labels, {"type": "category", "categoryorder": "array", "categoryarray": list(dict.fromkeys(labels))}


def numeric_metrics(runs: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> list[str]:
    """The metric columns with a finite number in at least one run."""
    return [m for m in metrics if any(_number(r.get(m)) is not None for r in runs)]


def metric_plots(
    runs: Sequence[Mapping[str, Any]], swept: Sequence[str], metrics: Sequence[str], best: str | None
) -> list[dict[str, str]]:
    """One scatter plot per (metric, swept parameter): ``{"id", "title", "figure"}`` (plotly JSON);
    runs without the metric are left out, the best run is drawn as a star."""
    plots = []
    for metric in numeric_metrics(runs, metrics):
        for param in swept:
            have = [r for r in runs if _number(r.get(metric)) is not None]
            xs, xaxis = _axis([r.get(param) for r in have])
            points = sorted(
                zip(xs, (_number(r[metric]) for r in have), (r["RID"] for r in have), strict=True),
                key=lambda p: p[0] if xaxis["type"] != "category" else 0,
            )
            name, pname = metric.removeprefix("metrics."), param.removeprefix("params.")
            trace = {
                "type": "scatter",
                "x": [p[0] for p in points],
                "y": [p[1] for p in points],
                "text": [p[2] for p in points],
                "mode": "markers",
                "marker": {
                    "size": [16 if p[2] == best else 9 for p in points],
                    "symbol": ["star" if p[2] == best else "circle" for p in points],
                    "color": "#1f6feb",
                },
                "hovertemplate": f"%{{text}}<br>{pname}=%{{x}}<br>{name}=%{{y}}<extra></extra>",
            }
            layout = _LAYOUT | {
                "title": {"text": f"{name} by {pname}", "x": 0.01, "xanchor": "left"},
                "xaxis": {**xaxis, "title": {"text": pname}},
                "yaxis": {"title": {"text": name}},
            }
            figure = json.dumps({"data": [trace], "layout": layout})
            plots.append({"id": f"plot-{name}-{pname}", "title": f"{name} by {pname}", "figure": figure})
    return plots


def parallel_coordinates(
    runs: Sequence[Mapping[str, Any]], swept: Sequence[str], metrics: Sequence[str], color_by: str | None
) -> tuple[str | None, int]:
    """Parallel coordinates of the swept parameters (categories as numbered ticks) and the numeric
    metrics, coloured by ``color_by`` (else the first metric); None with fewer than two swept
    parameters. Also how many runs were left out for lacking a metric (a failed run, say)."""
    if len(swept) < 2:
        return None, 0
    shown = numeric_metrics(runs, metrics)
    drawn = [r for r in runs if all(_number(r.get(m)) is not None for m in shown)]
    dimensions = []
    for param in swept:
        values, axis = _axis([r.get(param) for r in drawn])
        label = param.removeprefix("params.")
        if axis["type"] == "category":
            ticks = axis["categoryarray"]
            dimensions.append(
                {
                    "label": label,
                    "values": [ticks.index(v) for v in values],
                    "tickvals": list(range(len(ticks))),
                    "ticktext": ticks,
                }
            )
        elif axis["type"] == "log":  # parcoords has no log axes: log10 values, ticks labelled as given
            ticks = sorted(set(values))
            dimensions.append(
                {
                    "label": label,
                    "values": [math.log10(v) for v in values],
                    "tickvals": [math.log10(t) for t in ticks],
                    "ticktext": [f"{t:g}" for t in ticks],
                }
            )
        else:
            dimensions.append({"label": label, "values": values})
    dimensions += [{"label": m.removeprefix("metrics."), "values": [_number(r[m]) for r in drawn]} for m in shown]
    colour = color_by if color_by in shown else (shown[0] if shown else None)
    line: dict[str, Any] = {"color": "#1f6feb"}
    if colour is not None:
        line = {
            "color": [_number(r[colour]) for r in drawn],
            "colorscale": "Viridis",
            "showscale": True,
            "colorbar": {"title": {"text": colour.removeprefix("metrics.")}},
        }
    layout = _LAYOUT | {"height": 420, "margin": {"l": 60, "r": 60, "t": 60, "b": 30}}
    figure = {"data": [{"type": "parcoords", "line": line, "dimensions": dimensions}], "layout": layout}
    return json.dumps(figure), len(runs) - len(drawn)
