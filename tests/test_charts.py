"""Issue 15.8: charts a reviewer can read. Axis labels are words with units (not raw keys), y axes
start at 0, titles stay inside the figure, lines have distinct colours, legends sit off the data,
log axes print plain numbers ($2,000, not 2x10^3); the sweep workbook's chart has one distinct
colour per series, an x axis over the data, and headers that do not break inside a word."""

from __future__ import annotations

import io

import openpyxl
import pytest

from prfaas_plan.planning.scenario import load_scenario
from prfaas_plan.planning.sweep import sweep
from prfaas_plan.reports import plots
from prfaas_plan.reports.labels import PALETTE, axis_label, value_label
from prfaas_plan.reports.review import build_review
from prfaas_plan.reports.xlsx_sweep import sweep_workbook


@pytest.mark.parametrize("key, label", [("link.bandwidth_gbit_per_s", "link.bandwidth (Gbit/s)"),
                                        ("objective.budget_usd_per_hour", "objective.budget ($/hour)"),
                                        ("local.usd_per_gpu_hour", "local.price ($/GPU-hour)"),
                                        ("workload.arrival_req_per_s", "workload.arrival (req/s)"),
                                        ("throughput_req_per_s", "throughput Lambda_max (req/s)"),
                                        ("prfaas.hardware", "prfaas.hardware")])
def test_axis_labels_are_words_with_units(key, label):
    """The unit comes from the key's name and the prefix stays (it can be typed into --vary)."""
    assert axis_label(key) == label


def test_legend_values_carry_units():
    assert value_label("local.usd_per_gpu_hour", 2.25) == "local.price 2.25 $/GPU-hour"


@pytest.fixture(scope="module")
def review():
    return build_review(load_scenario("budget-case-study"))


@pytest.fixture(scope="module")
def figures(review):
    figs = plots.review_figures(review)
    rows = sweep(load_scenario("budget-case-study"), [("objective.budget_usd_per_hour", [500.0, 3000.0, 6000.0]),
                                                      ("local.usd_per_gpu_hour", [1.5, 2.25, 3.0])])
    figs["sweep2d"] = plots.sweep(rows, ["objective.budget_usd_per_hour", "local.usd_per_gpu_hour"])
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    for fig in figs.values():
        FigureCanvasAgg(fig).draw()  # lays the figure out as the PNG and SVG writers do
    return figs


def _inside(inner, outer, slack: float = 1.0) -> bool:
    return inner.x0 >= outer.x0 - slack and inner.x1 <= outer.x1 + slack and inner.y0 >= outer.y0 - slack and inner.y1 <= outer.y1 + slack


def test_titles_and_legends_stay_in_the_figure_and_off_the_data(figures):
    """Regression: titles ran past the figure (Fig. 5a's, the sweep's) and Fig. 5a's legend
    covered its curves. Every title lies inside the figure; every legend outside the axes."""
    for name, fig in figures.items():
        renderer = fig.canvas.get_renderer()
        box = fig.bbox
        ax = fig.axes[0]
        assert _inside(ax.title.get_window_extent(renderer), box), name
        for legend in fig.legends + [a.get_legend() for a in fig.axes if a.get_legend()]:
            lb = legend.get_window_extent(renderer)
            assert _inside(lb, box), name
            assert not lb.overlaps(ax.get_window_extent(renderer)), name


def test_lines_have_distinct_colours_and_fig5a_few_enough(figures):
    """Regression: Fig. 5a drew 12 lines with a 10-colour cycle (two pairs alike). Now at most
    seven splits, each its own (colour, dash); none shares the plan's vermillion."""
    for name in ("fig5a", "sweep2d", "kv"):
        lines = [ln for ln in figures[name].axes[0].get_lines() if ln.get_label() and not ln.get_label().startswith(("_", "plan"))]
        styles = [(ln.get_color(), ln.get_linestyle()) for ln in lines]
        assert len(set(styles)) == len(styles) >= 2, name
        assert all(c in PALETTE for c, _ in styles), name
    assert len([ln for ln in figures["fig5a"].axes[0].get_lines() if "P / " in ln.get_label()]) <= len(PALETTE)


def test_y_axes_start_at_zero_and_labels_are_not_keys(figures):
    for name in ("fig5a", "fig5b", "link", "budget", "sweep2d"):
        assert figures[name].axes[0].get_ylim()[0] == 0, name
    ax = figures["sweep2d"].axes[0]
    assert ax.get_xlabel() == "objective.budget ($/hour)" and ax.get_ylabel() == "throughput Lambda_max (req/s)"
    assert ax.get_xlim() == (500.0, 6000.0)  # the data's range, nothing past it


def test_log_axes_print_plain_numbers(figures):
    """Regression: the budget axis read 10^3, the KV axis 3x10^1."""
    for name, which in (("budget", "x"), ("link", "x"), ("lengths", "x"), ("fig5a", "x"), ("kv", "x"), ("kv", "y")):
        axis = figures[name].axes[0].xaxis if which == "x" else figures[name].axes[0].yaxis
        texts = [t.get_text() for t in axis.get_ticklabels() + axis.get_ticklabels(minor=True) if t.get_text()]
        assert texts, (name, which)
        assert not any("^" in t or "times" in t or "mathdefault" in t for t in texts), (name, which, texts)
    assert "$1,000" in [t.get_text() for t in figures["budget"].axes[0].get_xticklabels()]


def _prov() -> dict:
    from prfaas_plan.reports.provenance import provenance

    return provenance(load_scenario("budget-case-study"), "distribution", "sweep")


def test_sweep_workbook_chart_colours_axis_and_headers():
    """Regression: three near-identical greens (chart style 13), an x axis running to 10,000 for
    data ending at 6,000, headers wrapping mid-word."""
    rows = sweep(load_scenario("budget-case-study"), [("objective.budget_usd_per_hour", [500.0, 3000.0, 6000.0]),
                                                      ("local.usd_per_gpu_hour", [1.5, 2.25, 3.0])])
    wb = openpyxl.load_workbook(io.BytesIO(sweep_workbook("budget", rows, ["objective.budget_usd_per_hour", "local.usd_per_gpu_hour"], _prov())))
    ws = wb["Sweep"]
    chart = ws._charts[0]
    colours = [str(getattr(s.graphicalProperties.line.solidFill.srgbClr, "val", s.graphicalProperties.line.solidFill.srgbClr)) for s in chart.series]
    assert len(colours) == 3 and len(set(colours)) == 3 and all(f"#{c}" in PALETTE for c in colours)
    assert (chart.x_axis.scaling.min, chart.x_axis.scaling.max) == (500.0, 6000.0) and chart.y_axis.scaling.min == 0
    from openpyxl.utils import get_column_letter

    for cell in ws[2]:
        if cell.value:
            width = ws.column_dimensions[get_column_letter(cell.column)].width
            assert max(len(w) for w in str(cell.value).split()) + 2 <= width, cell.value
