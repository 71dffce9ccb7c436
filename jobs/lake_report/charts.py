"""Plots as inline SVG strings: no plotting library, nothing to fetch, crisp at any zoom."""

from html import escape

WIDTH, HEIGHT = 360, 180
LEFT, BOTTOM, TOP = 44, 34, 22


def _number(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 0.01:
        return f"{x:.2g}"
    return f"{x:.3g}"


def _frame(title: str, bars: list[tuple[float, float, float, str]], x_labels: list[tuple[float, str]], top: int) -> str:
    """An SVG with ``bars`` (x, width, count, tooltip) scaled to the plot area, a y axis up to ``top``."""
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - TOP - BOTTOM
    parts = [f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
             f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
             f'<text class="chart-title" x="{LEFT}" y="14">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" class="axis"/>',
             f'<text class="tick" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{top}</text>',
             f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>']
    for x, w, count, tip in bars:
        h = plot_h * count / top if top else 0
        parts.append(f'<rect class="bar" x="{LEFT + x * plot_w:.1f}" y="{TOP + plot_h - h:.1f}" width="{max(w * plot_w - 1, 1):.1f}" '
                     f'height="{h:.1f}"><title>{escape(tip)}</title></rect>')
    for x, label in x_labels:
        parts.append(f'<text class="tick" x="{LEFT + x * plot_w:.1f}" y="{TOP + plot_h + 13}" text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram(title: str, edges: list[float], counts: list[int]) -> str:
    """Bars over equal-width bins; ``edges`` has one more entry than ``counts``."""
    n = len(counts)
    bars = [(i / n, 1 / n, c, f"{_number(edges[i])} to {_number(edges[i + 1])}: {c}") for i, c in enumerate(counts)]
    labels = [(i / n, _number(edges[i])) for i in (0, n // 2, n)]
    return _frame(title, bars, labels, max(counts) or 1)


def bars(title: str, items: list[tuple[str, int]]) -> str:
    """One bar per (label, count)."""
    n = len(items) or 1
    shown = [(i / n, 1 / n, c, f"{label}: {c}") for i, (label, c) in enumerate(items)]
    labels = [((i + 0.5) / n, label) for i, (label, _) in enumerate(items)]
    return _frame(title, shown, labels, max((c for _, c in items), default=1) or 1)


def plot(spec: dict) -> str:
    """The SVG of one of :meth:`LakeQueries.plots`' entries."""
    if spec["kind"] == "histogram":
        return histogram(spec["title"], spec["data"]["edges"], spec["data"]["counts"])
    return bars(spec["title"], spec["data"])
