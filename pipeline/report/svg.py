"""Small inline-SVG charts (no JavaScript, no external files): lines, box plots, intervals.

Coordinates: a plot area of `width` x `height` pixels inside margins; data ranges map linearly."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from pipeline.report.markup import text

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf")
LEFT, RIGHT, TOP, BOTTOM = 56, 150, 12, 40  # margins; the legend sits in the right one


def color(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


class _Frame:
    """Maps data (x, y) into the plot area and draws the axes, ticks and labels."""

    def __init__(self, x_range, y_range, width, height, x_label, y_label, left=LEFT):
        self.left = left
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.width, self.height = width, height
        self.x_label, self.y_label = x_label, y_label

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (value - self.x0) / span * self.width

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return TOP + self.height - (value - self.y0) / span * self.height

    def axes(self, y_ticks: bool = True) -> list[str]:
        bottom, right = TOP + self.height, self.left + self.width
        parts = [f'<rect x="{self.left}" y="{TOP}" width="{self.width}" height="{self.height}" class="area"/>']
        for tick in np.linspace(self.y0, self.y1, 5) if y_ticks else ():
            y = self.y(tick)
            parts.append(f'<line x1="{self.left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" class="grid"/>'
                         f'<text x="{self.left - 6}" y="{y + 4:.1f}" text-anchor="end">{_tick(tick)}</text>')
        for tick in _x_ticks(self.x0, self.x1):
            x = self.x(tick)
            parts.append(f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle">{_tick(tick)}</text>')
        parts.append(f'<text x="{self.left + self.width / 2:.1f}" y="{bottom + 34}" text-anchor="middle">'
                     f'{text(self.x_label)}</text>')
        parts.append(f'<text transform="translate(14,{TOP + self.height / 2:.1f}) rotate(-90)" '
                     f'text-anchor="middle">{text(self.y_label)}</text>')
        return parts


def _tick(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.2f}"


def _x_ticks(low: float, high: float) -> np.ndarray:
    """Six ticks; whole numbers when both ends are whole (steps, epochs)."""
    if float(low).is_integer() and float(high).is_integer() and high - low >= 5:
        return np.unique(np.round(np.linspace(low, high, 6)))
    return np.linspace(low, high, 6)


def _label_margin(labels) -> int:
    """Left margin that fits the longest row label (~6.5 px a character at 11 px)."""
    return max(LEFT, 12 + int(6.5 * max((len(label) for label in labels), default=0)))


def _svg(parts: list[str], width: int, height: int, title: str, left: int = LEFT, right: int = RIGHT) -> str:
    total_w, total_h = left + width + right, TOP + height + BOTTOM
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {total_w} {total_h}" '
            f'width="{total_w}" height="{total_h}"><title>{text(title)}</title>' + "".join(parts) + "</svg>")


def _legend(names: Sequence[str], width: int) -> list[str]:
    x = LEFT + width + 12
    return [f'<rect x="{x}" y="{TOP + 4 + 16 * i}" width="10" height="10" fill="{color(i)}"/>'
            f'<text x="{x + 15}" y="{TOP + 13 + 16 * i}">{text(name)}</text>' for i, name in enumerate(names)]


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str, x_label: str,
               y_label: str, width: int = 460, height: int = 280, diagonal: bool = False,
               unit_square: bool = False) -> str:
    """One polyline per series (name -> (xs, ys)), a legend; `diagonal` draws y = x (ROC chance)."""
    series = {name: (np.asarray(xs, float), np.asarray(ys, float)) for name, (xs, ys) in series.items() if len(xs)}
    if unit_square or not series:
        x_range = y_range = (0.0, 1.0)
    else:
        xs = np.concatenate([s[0] for s in series.values()])
        ys = np.concatenate([s[1] for s in series.values()])
        pad = (ys.max() - ys.min()) * 0.05 or 0.05
        x_range, y_range = (float(xs.min()), float(xs.max())), (float(ys.min() - pad), float(ys.max() + pad))
    frame = _Frame(x_range, y_range, width, height, x_label, y_label)
    parts = frame.axes()
    if diagonal:
        parts.append(f'<line x1="{frame.x(0)}" y1="{frame.y(0)}" x2="{frame.x(1)}" y2="{frame.y(1)}" class="chance"/>')
    for i, (name, (xs, ys)) in enumerate(series.items()):
        points = " ".join(f"{frame.x(x):.1f},{frame.y(y):.1f}" for x, y in zip(xs, ys))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{color(i)}" stroke-width="1.8" '
                     f'data-series="{text(name)}"/>')
    right = max(RIGHT, 40 + int(6.5 * max((len(name) for name in series), default=0)))
    return _svg(parts + _legend(list(series), width), width, height, title, LEFT, right)


def box_plot(groups: dict[str, Sequence[float]], title: str, value_label: str, width: int = 460) -> str:
    """One horizontal box per group (quartiles, whiskers at the 5th/95th percentiles, the mean as a
    diamond, every value as a dot), on a shared 0..1 axis."""
    height = 28 * max(len(groups), 1)
    left = _label_margin(groups)
    frame = _Frame((0.0, 1.0), (0.0, float(max(len(groups), 1))), width, height, value_label, "", left)
    parts = frame.axes(y_ticks=False)  # rows are groups
    for i, (name, values) in enumerate(groups.items()):
        values = np.asarray(values, float)
        values = values[~np.isnan(values)]
        mid = TOP + 28 * i + 14
        parts.append(f'<text x="{left - 6}" y="{mid + 4}" text-anchor="end">{text(name)}</text>')
        if values.size == 0:
            continue
        p5, q1, median, q3, p95 = np.percentile(values, [5, 25, 50, 75, 95])
        c = color(i)
        parts.append(f'<line x1="{frame.x(p5):.1f}" y1="{mid}" x2="{frame.x(p95):.1f}" y2="{mid}" stroke="{c}"/>'
                     f'<rect x="{frame.x(q1):.1f}" y="{mid - 8}" width="{max(frame.x(q3) - frame.x(q1), 1):.1f}" '
                     f'height="16" fill="{c}" fill-opacity="0.25" stroke="{c}" data-group="{text(name)}"/>'
                     f'<line x1="{frame.x(median):.1f}" y1="{mid - 8}" x2="{frame.x(median):.1f}" y2="{mid + 8}" '
                     f'stroke="{c}" stroke-width="2"/>')
        jitter = (np.arange(values.size) % 7 - 3) * 1.6  # deterministic spread of the dots
        parts.extend(f'<circle cx="{frame.x(v):.1f}" cy="{mid + j:.1f}" r="1.3" fill="{c}" fill-opacity="0.6"/>'
                     for v, j in zip(values, jitter))
        mean = float(values.mean())
        parts.append(f'<path d="M{frame.x(mean):.1f},{mid - 5} l4,5 l-4,5 l-4,-5 z" fill="#000"/>')
    return _svg(parts, width, height, title, left, 24)


def interval_chart(rows: list[tuple[str, float, float, float]], title: str, value_label: str,
                   width: int = 460, groups: int = 1) -> str:
    """One row per (label, value, low, high): a dot with its interval; rows coloured in runs of `groups`."""
    height = 20 * max(len(rows), 1)
    finite = [v for _, *vals in rows for v in vals if v is not None and np.isfinite(v)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    pad = (hi - lo) * 0.05 or 0.05
    left = _label_margin([row[0] for row in rows])
    frame = _Frame((lo - pad, hi + pad), (0.0, 1.0), width, height, value_label, "", left)
    parts = [f'<rect x="{left}" y="{TOP}" width="{width}" height="{height}" class="area"/>']
    for tick in np.linspace(lo - pad, hi + pad, 6):
        x = frame.x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + height}" class="grid"/>'
                     f'<text x="{x:.1f}" y="{TOP + height + 16}" text-anchor="middle">{tick:.2f}</text>')
    parts.append(f'<text x="{left + width / 2:.1f}" y="{TOP + height + 34}" text-anchor="middle">'
                 f'{text(value_label)}</text>')
    for i, (label, value, low, high) in enumerate(rows):
        mid, c = TOP + 20 * i + 10, color(i % groups if groups > 1 else i)
        parts.append(f'<text x="{left - 6}" y="{mid + 4}" text-anchor="end">{text(label)}</text>')
        if low is not None and high is not None:
            parts.append(f'<line x1="{frame.x(low):.1f}" y1="{mid}" x2="{frame.x(high):.1f}" y2="{mid}" '
                         f'stroke="{c}" stroke-width="2"/>')
        if value is not None:
            parts.append(f'<circle cx="{frame.x(value):.1f}" cy="{mid}" r="4" fill="{c}" data-row="{text(label)}"/>')
    return _svg(parts, width, height, title, left, 24)
