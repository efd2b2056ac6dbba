"""The digest chart: the last weeks of MQLs and SQLs (bars) and the claim-SLA rate (line), as a PNG."""
from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # headless: no display on a server

import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from blocks.texts import t


def weekly_chart(series: list[dict], lang: str) -> bytes:
    labels = [s["label"].split("-")[-1] for s in series]
    x = range(len(series))
    fig, ax = plt.subplots(figsize=(8, 3.6), dpi=110)
    try:
        ax.bar([i - 0.2 for i in x], [s["mqls"] for s in series], width=0.4, label=t("chart.mqls", lang),
               color="#457b9d")
        ax.bar([i + 0.2 for i in x], [s["sqls"] for s in series], width=0.4, label=t("chart.sqls", lang),
               color="#2a9d8f")
        ax.set_xticks(list(x), labels)
        ax.set_ylabel(t("chart.count", lang))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # leads are counted whole
        rate_ax = ax.twinx()
        rates = [None if s["claim_sla_rate"] is None else s["claim_sla_rate"] * 100 for s in series]
        rate_ax.plot(list(x), [r if r is not None else float("nan") for r in rates], color="#e63946", marker="o",
                     label=t("chart.claim_sla", lang))
        rate_ax.set_ylim(0, 105)
        rate_ax.set_ylabel("%")
        handles = ax.get_legend_handles_labels()[0] + rate_ax.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], loc="upper left", fontsize=8)
        ax.set_title(t("chart.title", lang, first=series[0]["label"], last=series[-1]["label"]), fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)
