"""The digest chart: the last weeks of MQLs and SQLs (bars) and the claim-SLA rate (line), as a PNG.

Every word on it comes from the text catalog. matplotlib's own font has no Japanese glyphs, so a Japanese chart
is set in IPAexGothic, the font the `matplotlib-fontja` dependency ships (docs/jobs.md, "The digest chart"). The
font is given to this chart's texts explicitly: nothing here changes matplotlib's global settings, and an English
chart is drawn with matplotlib's defaults, as it always was.
"""
from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from functools import cache
from importlib import metadata

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from blocks.texts import t

FONT_DISTRIBUTION = "matplotlib-fontja"  # ships IPAexGothic (IPA Font License v1.0) as a .ttf file
FALLBACK_FAMILY = "DejaVu Sans"  # matplotlib's bundled font, for any character the Japanese font lacks
_register_lock = threading.Lock()
_registered: tuple[str, ...] | None = None  # the families, once the font is registered


@dataclass(frozen=True)
class ChartTexts:
    """Every text the chart shows, in one language."""

    title: str
    mqls: str         # legend: the MQL bars
    sqls: str         # legend: the SQL bars
    claim_sla: str    # legend: the claim-SLA line
    count_axis: str   # left axis
    rate_axis: str    # right axis (percent)
    weeks: tuple[str, ...]  # x tick labels, one per week


def week_number(label: str) -> int:
    """The ISO week number of a week label such as `2026-W48`."""
    year, sep, number = label.partition("-W")
    if not sep or not (year.isdigit() and number.isdigit()):
        raise ValueError(f"not a week label: {label!r}")
    return int(number)


def chart_texts(series: list[dict], lang: str) -> ChartTexts:
    """The chart's words for `series` (oldest week first, as `models.reports.chart_series` gives it)."""
    if not series:
        raise ValueError("the chart needs at least one week")
    return ChartTexts(
        title=t("chart.title", lang, first=series[0]["label"], last=series[-1]["label"]),
        mqls=t("chart.mqls", lang),
        sqls=t("chart.sqls", lang),
        claim_sla=t("chart.claim_sla", lang),
        count_axis=t("chart.count", lang),
        rate_axis=t("chart.rate_axis", lang),
        weeks=tuple(t("chart.week_tick", lang, week=week_number(s["label"])) for s in series),
    )


@cache
def japanese_font_file() -> str:
    """The path of the Japanese font file, found through the installed distribution's file list.

    The package is deliberately not imported: importing it switches matplotlib's default font for the whole
    process, and only the chart should use this font."""
    try:
        files = metadata.files(FONT_DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        files = []
    fonts = sorted(str(f.locate()) for f in files if f.suffix.lower() in (".ttf", ".otf"))
    if not fonts:
        raise RuntimeError(f"The Japanese chart font is missing: install the project's dependencies "
                           f"({FONT_DISTRIBUTION} ships it).")
    return fonts[0]


def japanese_families() -> tuple[str, ...]:
    """Registers the Japanese font with matplotlib's font manager (once) and names the families to use.

    Registering only adds the font to those matplotlib can find by name; defaults stay as they are."""
    global _registered
    with _register_lock:
        if _registered is None:
            path = japanese_font_file()
            font_manager.fontManager.addfont(path)
            _registered = (font_manager.FontProperties(fname=path).get_name(), FALLBACK_FAMILY)
        return _registered


def font_families(lang: str) -> list[str] | None:
    """The font families the chart's texts use in `lang`; None: matplotlib's defaults."""
    return list(japanese_families()) if lang == "ja" else None


def build_figure(series: list[dict], lang: str) -> Figure:
    """The chart as a matplotlib figure (not drawn yet). A plain Figure, not pyplot: no global figure registry."""
    texts = chart_texts(series, lang)
    families = font_families(lang)
    font = {} if families is None else {"fontfamily": families}
    x = list(range(len(series)))
    fig = Figure(figsize=(8, 3.6), dpi=110)
    FigureCanvasAgg(fig)  # headless: drawn to pixels, no display on a server
    ax = fig.subplots()
    ax.bar([i - 0.2 for i in x], [s["mqls"] for s in series], width=0.4, label=texts.mqls, color="#457b9d")
    ax.bar([i + 0.2 for i in x], [s["sqls"] for s in series], width=0.4, label=texts.sqls, color="#2a9d8f")
    ax.set_xticks(x, texts.weeks)
    ax.set_ylabel(texts.count_axis, **font)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # leads are counted whole
    rate_ax = ax.twinx()
    rates = [float("nan") if s["claim_sla_rate"] is None else s["claim_sla_rate"] * 100 for s in series]
    rate_ax.plot(x, rates, color="#e63946", marker="o", label=texts.claim_sla)
    rate_ax.set_ylim(0, 105)  # a rate of 100% stays inside the frame
    rate_ax.set_ylabel(texts.rate_axis, **font)
    if families is not None:
        for axes in (ax, rate_ax):
            axes.tick_params(labelfontfamily=families)
    handles = ax.get_legend_handles_labels()[0] + rate_ax.get_legend_handles_labels()[0]
    legend_font = font_manager.FontProperties(family=families, size=8) if families else {"size": 8}
    ax.legend(handles, [h.get_label() for h in handles], loc="upper left", prop=legend_font)
    ax.set_title(texts.title, fontsize=10, **font)
    fig.tight_layout()
    return fig


def weekly_chart(series: list[dict], lang: str) -> bytes:
    buf = io.BytesIO()
    build_figure(series, lang).savefig(buf, format="png")
    return buf.getvalue()
