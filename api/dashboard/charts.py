"""SVG charts drawn on the server: the geometry here, the markup in the templates (readable without
JavaScript, printable, no library)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from loanfund.reports.leverage import PairHistory, PairLeverage

PALETTE = ("#1f6fb2", "#d9822b", "#2e9d5b", "#b23b3b", "#7a4fb2", "#3b9fb2", "#9d8a2e", "#b23b8a")


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    width: float
    limit_x: float
    value: str
    limit: str
    flag: str


@dataclass(frozen=True)
class BarChart:
    width: int
    height: int
    label_width: int
    plot_width: int
    row_height: int
    bars: tuple[Bar, ...]


def _f(value: Decimal | None) -> float:
    # Geometry only: pixel positions, never amounts.
    return float(value) if value is not None else 0.0


def leverage_bars(pairs: list[PairLeverage], *, width: int = 760) -> BarChart:
    label_width, row_height = 220, 30
    plot = width - label_width - 90
    top = max(
        [_f(p.capacity.leverage_multiple) for p in pairs]
        + [_f(p.capacity.leverage_ratio) for p in pairs]
        + [1]
    )
    scale = plot / (top * 1.05)
    bars = tuple(
        Bar(
            label=f"{p.fund_code} · {p.bank_name}",
            y=i * row_height + 6,
            width=max(_f(p.capacity.leverage_ratio) * scale, 1.0),
            limit_x=label_width + _f(p.capacity.leverage_multiple) * scale,
            value="—" if p.capacity.leverage_ratio is None else f"{p.capacity.leverage_ratio:.2f}",
            limit=f"{p.capacity.leverage_multiple:.2f}".rstrip("0").rstrip("."),
            flag=p.flag,
        )
        for i, p in enumerate(pairs)
    )
    return BarChart(width, len(pairs) * row_height + 12, label_width, plot, row_height, bars)


@dataclass(frozen=True)
class Line:
    label: str
    colour: str
    points: str  # "x,y x,y …" for <polyline>
    dots: tuple[tuple[float, float, str], ...]  # x, y, title
    limit_y: float


@dataclass(frozen=True)
class LineChart:
    title: str
    width: int
    height: int
    left: int
    bottom: float
    lines: tuple[Line, ...]
    x_labels: tuple[tuple[float, str], ...]
    y_ticks: tuple[tuple[float, str], ...]


def leverage_lines(
    title: str, histories: list[PairHistory], names: dict[str, str], *, width: int = 760
) -> LineChart:
    height, left, right, top, bottom_margin = 260, 50, 20, 16, 34
    plot_w, plot_h = width - left - right, height - top - bottom_margin
    n = max((len(h.points) for h in histories), default=1)
    ceiling = (
        max(
            [_f(p.ratio) for h in histories for p in h.points]
            + [_f(h.leverage_multiple) for h in histories]
            + [1]
        )
        * 1.1
    )
    step = plot_w / max(n - 1, 1)

    def y(value: float) -> float:
        return round(top + plot_h - value / ceiling * plot_h, 1)

    lines = []
    for i, history in enumerate(histories):
        coords = [(round(left + j * step, 1), y(_f(p.ratio)), p) for j, p in enumerate(history.points)]
        lines.append(
            Line(
                label=names.get(history.bank_code, history.bank_code),
                colour=PALETTE[i % len(PALETTE)],
                points=" ".join(f"{x},{yy}" for x, yy, _ in coords),
                dots=tuple(
                    (x, yy, f"{p.on.isoformat()}: {'—' if p.ratio is None else f'{p.ratio:.2f}'}")
                    for x, yy, p in coords
                ),
                limit_y=y(_f(history.leverage_multiple)),
            )
        )
    first = histories[0].points if histories else ()
    x_labels = tuple(
        (round(left + j * step, 1), f"{p.on.month}/{p.on.year % 100:02d}") for j, p in enumerate(first)
    )
    ticks = 5
    y_ticks = tuple((y(ceiling * k / ticks), f"{ceiling * k / ticks:.1f}") for k in range(ticks + 1))
    return LineChart(title, width, height, left, top + plot_h, tuple(lines), x_labels, y_ticks)
