"""The digest chart: its words come from the catalog, and a Japanese chart is set in a font that has every glyph.

matplotlib reports a glyph its font lacks as a `UserWarning` ("Glyph … missing from font(s) …") and a font it
cannot find on its `matplotlib` logger ("findfont: …"): the render tests turn the first into errors and fail on
the second.
"""
from __future__ import annotations

import io
import json
import logging
import re
import sys
import warnings
from pathlib import Path

import matplotlib
import pytest
from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ft2font import FT2Font
from PIL import Image

from blocks.chart import ChartTexts, build_figure, chart_texts, japanese_font_file, week_number, weekly_chart
from blocks.texts import CATALOG, t
from jobs.scheduler import weekly_digest
from tests.conftest import FakeClock, add_lead, jst

# Eight weeks across a new year (ISO 2025 has 52 weeks), with a week without claims and one all in time.
SERIES = [
    {"label": label, "mqls": mqls, "sqls": sqls, "claim_sla_rate": rate}
    for label, mqls, sqls, rate in [
        ("2025-W51", 12, 4, 0.75), ("2025-W52", 3, 1, None), ("2026-W01", 0, 0, None), ("2026-W02", 9, 2, 1.0),
        ("2026-W03", 14, 5, 0.8571), ("2026-W04", 11, 3, 0.6364), ("2026-W05", 16, 6, 0.9375),
        ("2026-W06", 10, 4, 0.9),
    ]
]
PNG_SIZE = (880, 396)  # 8 x 3.6 inches at 110 dpi
DEFAULT_FONT = Path(font_manager.findfont(font_manager.FontProperties())).resolve()  # matplotlib's DejaVu Sans
JAPANESE = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")  # kana or kanji


def figure_texts(fig: Figure) -> dict:
    ax, rate_ax = fig.axes
    return {"title": ax.get_title(), "count_axis": ax.get_ylabel(), "rate_axis": rate_ax.get_ylabel(),
            "legend": [x.get_text() for x in ax.get_legend().get_texts()],
            "weeks": [x.get_text() for x in ax.get_xticklabels()]}


def text_artists(fig: Figure) -> list:
    """Every text drawn on the chart that has words or numbers."""
    ax, rate_ax = fig.axes
    artists = [ax.title, ax.yaxis.label, rate_ax.yaxis.label, *ax.get_legend().get_texts(), *ax.get_xticklabels(),
               *ax.get_yticklabels(), *rate_ax.get_yticklabels()]
    return [a for a in artists if a.get_text()]


def font_file(prop: font_manager.FontProperties) -> Path:
    """The font file matplotlib draws a text with these properties in."""
    return Path(font_manager.findfont(prop)).resolve()


def shown_ticks(axes) -> list[str]:
    """The y tick labels inside the axes' limits (the locator may place one just beyond them, not drawn)."""
    low, high = axes.get_ylim()
    return [label.get_text() for value, label in zip(axes.get_yticks(), axes.get_yticklabels(), strict=True)
            if low <= value <= high]


def assert_valid_png(png: bytes) -> None:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG" and image.size == PNG_SIZE
    image.load()  # decodes every pixel: a truncated or corrupt file raises here


def matplotlib_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("matplotlib") and r.levelno >= logging.WARNING]


# The words, without drawing ---------------------------------------------------------------------------------
def test_japanese_chart_texts_are_the_catalog_strings_in_japanese():
    texts = chart_texts(SERIES, "ja")
    assert texts == ChartTexts(
        title="MQL数・SQL数・SLA内担当率の推移(2025-W51 〜 2026-W06)",
        mqls="MQL数", sqls="SQL数", claim_sla="SLA内の担当率(%)", count_axis="リード数", rate_axis="SLA内の割合(%)",
        weeks=("第51週", "第52週", "第1週", "第2週", "第3週", "第4週", "第5週", "第6週"),
    )
    assert texts.title == t("chart.title", "ja", first="2025-W51", last="2026-W06")
    for text in (texts.title, texts.mqls, texts.sqls, texts.claim_sla, texts.count_axis, texts.rate_axis,
                 *texts.weeks):
        assert JAPANESE.search(text), text


def test_english_chart_texts_are_as_before():
    texts = chart_texts(SERIES, "en")
    assert texts.title == "MQLs, SQLs and claim SLA, 2025-W51 to 2026-W06"
    assert (texts.mqls, texts.sqls, texts.claim_sla, texts.count_axis) == (
        "MQLs", "SQLs", "claimed within SLA (%)", "leads")
    assert texts.rate_axis == "% within SLA"
    assert texts.weeks == ("W51", "W52", "W01", "W02", "W03", "W04", "W05", "W06")
    assert not any(JAPANESE.search(x) for x in (texts.title, texts.count_axis, texts.rate_axis, *texts.weeks))


def test_week_numbers_are_read_from_iso_week_labels():
    assert [week_number(x) for x in ("2026-W48", "2026-W01", "2020-W53")] == [48, 1, 53]
    for bad in ("2026-48", "W48", "2026-Wxx", "2026-11", ""):
        with pytest.raises(ValueError, match="not a week label"):
            week_number(bad)
    with pytest.raises(ValueError, match="at least one week"):
        chart_texts([], "ja")


def test_the_japanese_font_has_every_glyph_the_japanese_chart_uses():
    path = Path(japanese_font_file())
    assert path.is_file() and path.suffix == ".ttf"
    assert font_manager.FontProperties(fname=str(path)).get_name() == "IPAexGothic"
    charmap = FT2Font(str(path)).get_charmap()
    chart_keys = [k for k in CATALOG if k.startswith("chart.")]
    used = "".join(CATALOG[k]["ja"] for k in chart_keys) + "0123456789-."  # numbers on the axes and the labels
    missing = sorted({c for c in used if ord(c) not in charmap and c not in "{}"})
    assert missing == []


# Drawn --------------------------------------------------------------------------------------------------
def test_the_warning_net_catches_a_missing_glyph(caplog):
    """The guard the render tests rely on: Japanese in matplotlib's default font does warn."""
    fig = Figure()
    FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, t("chart.count", "ja"))
    with pytest.warns(UserWarning, match="missing from font"):
        fig.canvas.draw()


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_chart_renders_every_glyph_and_shows_the_catalog_texts(lang, caplog):
    caplog.set_level(logging.WARNING, logger="matplotlib")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        png = weekly_chart(SERIES, lang)
        fig = build_figure(SERIES, lang)
        fig.canvas.draw()
    assert matplotlib_warnings(caplog) == []
    assert_valid_png(png)

    texts = chart_texts(SERIES, lang)
    assert figure_texts(fig) == {
        "title": t("chart.title", lang, first="2025-W51", last="2026-W06"),
        "count_axis": t("chart.count", lang), "rate_axis": t("chart.rate_axis", lang),
        "legend": [t("chart.mqls", lang), t("chart.sqls", lang), t("chart.claim_sla", lang)],
        "weeks": list(texts.weeks),
    }
    # Which file each text is drawn with: the Japanese font for a Japanese chart, matplotlib's default otherwise.
    fonts = {font_file(a.get_fontproperties()) for a in text_artists(fig)}
    assert fonts == {Path(japanese_font_file()).resolve() if lang == "ja" else DEFAULT_FONT}

    # The axes stay readable: whole leads on the left, 0 to 100 percent on the right.
    ax, rate_ax = fig.axes
    counts = shown_ticks(ax)
    assert all(c.isdigit() for c in counts) and counts[0] == "0" and int(counts[-1]) >= 14
    assert rate_ax.get_ylim() == (0, 105)
    rates = shown_ticks(rate_ax)
    assert rates[0] == "0" and rates[-1] == "100" and all(r.isdigit() for r in rates)


def test_a_japanese_chart_changes_no_global_font_setting():
    before = {k: v for k, v in matplotlib.rcParams.items() if k.startswith("font.")}
    weekly_chart(SERIES, "ja")
    assert {k: v for k, v in matplotlib.rcParams.items() if k.startswith("font.")} == before
    assert "matplotlib_fontja" not in sys.modules  # importing it would switch the process's default font
    fig = build_figure(SERIES, "en")  # an English chart drawn after a Japanese one still looks as before
    fig.canvas.draw()
    assert {font_file(a.get_fontproperties()) for a in text_artists(fig)} == {DEFAULT_FONT}


# Through the app -----------------------------------------------------------------------------------------
def test_japanese_digest_uploads_a_chart_with_every_glyph(make_app, slack, db, caplog):
    add_lead(db, mql=jst(2026, 11, 24, 10), score=85, claimed_at=jst(2026, 11, 24, 10, 30), claimed_by="UREP1",
             contacted_at=jst(2026, 11, 24, 12), sql_at=jst(2026, 11, 26, 10))
    add_lead(db, mql=jst(2026, 11, 25, 9), score=72, source="ads")
    app = make_app(now=FakeClock(jst(2026, 11, 30, 9, 0)), LANGUAGE="ja")
    caplog.set_level(logging.WARNING, logger="matplotlib")
    with warnings.catch_warnings(record=True) as caught:  # the chart is drawn on the sender's thread
        warnings.simplefilter("always")
        assert weekly_digest(app.runtime.services) is True
        app.drain()
    assert [str(w.message) for w in caught if "font" in str(w.message)] == []
    assert matplotlib_warnings(caplog) == []
    post = slack.calls_to("chat.postMessage")[0]
    assert "週次ハンドオフ・ダイジェスト — 2026-W48" in json.dumps(post.params["blocks"], ensure_ascii=False)
    assert len(slack.files) == 1
    upload = slack.files[0]
    assert upload["initial_comment"] == t("chart.comment", "ja", period="2026-W48")
    assert_valid_png(upload["bytes"])
