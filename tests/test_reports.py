"""The review outputs of issue 8: the HTML/Markdown report (its numbers are `optimize -f json`'s),
the reviewer's workbook, provenance in every saved file, --version, the output format taken from
the file's extension, and tables that stay readable at 80 columns. The browser and LibreOffice
checks run where those programs are installed and are skipped, saying so, elsewhere."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import openpyxl
import pytest
from typer.testing import CliRunner

from prfaas_plan import __version__
from prfaas_plan.cli import app

RUNNER = CliRunner()
ENV = {"COLUMNS": "200"}
SHEETS = ["Summary", "Inputs", "Plan, baselines, capacities", "What-ifs, sweeps"]  # one printed page each
SECTIONS = {"Inputs": "Inputs", "Plan & baselines": SHEETS[2], "Capacities": SHEETS[2], "What-ifs": SHEETS[3], "Sweeps": SHEETS[3]}


def cli(*args, env=ENV):
    return RUNNER.invoke(app, [str(a) for a in args], env=env)


def ok(res):
    assert res.exit_code == 0, (res.stdout, res.stderr, res.exception)
    return res


@pytest.fixture(scope="module")
def plan_json():
    return json.loads(ok(cli("optimize", "paper-case-study", "-f", "json")).stdout)


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "r.html"
    ok(cli("report", "paper-case-study", "-o", out))
    return out


class _Cells(HTMLParser):
    """Collects data-key/data-value cells, figure ids and every external reference."""

    def __init__(self):
        super().__init__()
        self.values, self.texts, self.figures, self.external, self._key = {}, {}, [], [], None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "data-key" in a:
            self.values[a["data-key"]] = json.loads(a["data-value"])
            self._key = a["data-key"]
        if tag == "figure":
            self.figures.append(a.get("id"))
        for name in ("src", "href", "xlink:href"):
            if a.get(name) and not a[name].startswith("#"):
                self.external.append((tag, a[name]))
        if tag in ("link", "img", "iframe", "object"):
            self.external.append((tag, str(a)))

    def handle_data(self, data):
        if self._key:
            self.texts[self._key] = data
            self._key = None


def _lookup(doc: dict, dotted: str):
    for part in dotted.split("."):
        doc = doc[part]
    return doc


def _check_numbers(cells: _Cells, plan: dict) -> int:
    for key, value in cells.values.items():
        assert _lookup(plan, key) == value, key
    return len(cells.values)


def test_html_report_is_self_contained_and_complete(html_report, plan_json):
    text = html_report.read_text()
    cells = _Cells()
    cells.feed(text)
    assert cells.external == []  # nothing fetched: inline CSS and SVG only
    assert cells.figures == ["fig-lengths", "fig-fig5a", "fig-fig5b", "fig-link", "fig-budget", "fig-kv"]
    assert text.count("<svg") == 6
    for heading in ("Question", "Answer", "Plan beside the baselines", "What binds", "Inputs and their sources", "What-ifs", "Assumptions"):
        assert heading in text, heading
    assert "ESTIMATE" in text and "TTFT" in text
    assert f"prfaas-plan {__version__}" in text and "mode distribution" in text
    assert _check_numbers(cells, plan_json) >= 40  # every plan and baseline number is the JSON's
    assert cells.texts["throughput_req_per_s"] == f"{plan_json['throughput_req_per_s']:.3f}"
    assert json.loads(re.search(r'id="plan-json">(.*?)</script>', text, re.S).group(1).replace("<\\/", "</"))["n_prfaas"] == plan_json["n_prfaas"]


def _chromium() -> str | None:
    return next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome", "chrome") if shutil.which(b)), None)


@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium installed (chromium / chromium-browser / google-chrome): the browser rendering check needs one")
def test_html_report_renders_in_headless_chromium(html_report, plan_json, tmp_path):
    """The page as a browser builds it (DOM after parsing) shows every section, and its numbers
    are the JSON's."""
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
    dom = subprocess.run(args + ["--dump-dom", html_report.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    cells = _Cells()
    cells.feed(dom.stdout)
    assert len(cells.figures) == 6 and dom.stdout.count("<svg") == 6
    assert _check_numbers(cells, plan_json) >= 40
    shot = tmp_path / "report.png"
    subprocess.run(args + ["--hide-scrollbars", "--window-size=1200,1600", f"--screenshot={shot}", html_report.as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000


def test_markdown_report_with_pngs(tmp_path):
    out = tmp_path / "r.md"
    ok(cli("report", "budget-case-study", "-o", out))
    text = out.read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(images) == 6
    for rel in images:
        assert (tmp_path / rel).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| quantity | PrfaaS-PD (this plan)" in text and "OK: carries the scenario's 30 req/s" in text


def test_report_needs_a_known_extension(tmp_path):
    res = cli("report", "paper-case-study", "-o", tmp_path / "r.pdf")
    assert res.exit_code == 2 and "name the report .html, .md or .xlsx" in res.stderr
    assert list(tmp_path.iterdir()) == []


# --- the reviewer's workbook ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def workbook(tmp_path_factory):
    out = tmp_path_factory.mktemp("xlsx") / "plan.xlsx"
    ok(cli("optimize", "budget-case-study", "-o", out))  # the format from the extension
    return out


def test_workbook_sheets_formats_and_layout(workbook):
    wb = openpyxl.load_workbook(workbook)
    assert wb.sheetnames == SHEETS
    for ws in wb.worksheets:
        assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
    plan = wb[SHEETS[2]]
    assert plan.freeze_panes == "A2" and plan["A1"].font.b
    header = [c.value for c in plan[1]]
    lam = plan.cell(2, header.index("Lambda req/s") + 1)
    assert isinstance(lam.value, float) and lam.number_format == "0.000"
    assert plan.cell(2, header.index("$/hour") + 1).number_format == "#,##0.00"
    assert plan.cell(2, header.index("t (tokens)") + 1).number_format == "#,##0"
    assert plan.cell(2, header.index("$ per 1k req") + 1).value.startswith("=IF(")
    caps = wb[SHEETS[2]]
    formulas = [c.value for row in caps.iter_rows() for c in row if isinstance(c.value, str) and c.value.startswith("=MIN(")]
    paths = [r[0].row for r in caps.iter_rows() if str(r[0].value).startswith(("PrfaaS prefill (Eq. 3)", "local prefill (Eq. 4)", "local decode (Eq. 5)"))]
    assert formulas == [f"=MIN(D{paths[0]}:D{paths[-1]})"] and len(paths) == 3  # Lambda_max over the three capacities
    summary = {r[0].value: r[1].value for r in wb["Summary"].iter_rows() if r[0].value}
    # every section the issue names is on the Summary with its sheet, and is a workbook-level name
    assert {k: summary[k] for k in SECTIONS} == SECTIONS
    for section, sheet in SECTIONS.items():
        name = "_".join(section.replace("&", " ").replace("-", " ").split())
        (title, _), = wb.defined_names[name].destinations
        assert title == sheet
    assert any(str(c.value).startswith("Capacities") for c in caps["A"]) and any(str(c.value).startswith("Sweeps") for c in wb[SHEETS[3]]["A"])
    assert summary["verdict"].startswith("OK: carries") and summary["version"] == __version__ and summary["mode"] == "distribution"
    inputs = wb["Inputs"]
    keys = [r[0].value for r in inputs.iter_rows(min_row=2)]
    assert {"prfaas.hardware", "local.gpus_per_instance", "workload.input_tokens", "slo.tpot_ms", "link.usd_per_gbit_per_s_hour"} <= set(keys)
    assert any(r[4].value == "ESTIMATE" for r in inputs.iter_rows(min_row=2))
    assert len(wb[SHEETS[3]]._charts) == 4
    for ws in wb.worksheets:  # columns fit their contents (no name cut at 40, no header-only sizing)
        for col, dim in ws.column_dimensions.items():
            assert 8 <= dim.width <= 62


def test_validate_workbook_keeps_numbers_and_names(tmp_path):
    out = tmp_path / "validate.xlsx"
    ok(cli("validate", "-o", out))
    ws = openpyxl.load_workbook(out)["table3"]
    header = [c.value for c in ws[1]]
    first = [c.value for c in ws[2]]
    assert first[header.index("table")] == 3  # a number, not the text "3"
    item = header.index("item") + 1
    longest = max(len(str(ws.cell(r, item).value)) for r in range(2, ws.max_row + 1))
    assert ws.column_dimensions[openpyxl.utils.get_column_letter(item)].width >= longest


@pytest.mark.skipif(shutil.which("soffice") is None or shutil.which("pdfinfo") is None,
                    reason="LibreOffice (soffice) and poppler (pdfinfo) are not installed: the spreadsheet conversion check needs both")
def test_workbook_converts_with_libreoffice(workbook, tmp_path):
    """LibreOffice opens the workbook, computes its formulas, and prints it on at most 4 landscape
    pages (one per sheet)."""
    res = subprocess.run(["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(workbook)], capture_output=True, text=True, timeout=240)
    pdf = tmp_path / "plan.pdf"
    assert pdf.exists(), res.stderr
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    pages = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    assert pages <= 4 and pages == len(SHEETS)  # the issue: at most 4 landscape pages; one per sheet
    w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+)", info).groups())
    assert w > h
    csv_out = subprocess.run(["soffice", "--headless", "--convert-to", f"csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,{SHEETS.index(SECTIONS['Capacities']) + 1}",
                              "--outdir", str(tmp_path), str(workbook)], capture_output=True, text=True, timeout=240)
    caps = next(tmp_path.glob(f"plan-{SHEETS[2]}.csv"), None)
    if caps is None:
        pytest.skip(f"this LibreOffice cannot export one sheet to CSV ({csv_out.stderr.strip()[:200]})")
    rows = list(csv.reader(caps.open()))
    lam = next(r for r in rows if r and r[0].startswith("Lambda_max = MIN"))
    check = next(r for r in rows if r and r[0].startswith("Lambda_max from the planner"))
    assert float(lam[3]) == pytest.approx(float(check[3]), rel=1e-3)  # the live MIN formula agrees


# --- provenance, formats, narrow terminals --------------------------------------------------------


def test_version():
    assert ok(cli("--version")).stdout.strip() == f"prfaas-plan {__version__}"


def test_json_and_csv_carry_provenance(plan_json):
    p = plan_json["provenance"]
    assert p["version"] == __version__ and p["mode"] == "distribution" and re.match(r"\d{4}-\d\d-\d\dT", p["generated_utc"])
    inputs = p["inputs"]
    assert inputs["prfaas.hardware"] == "h200" and inputs["local.gpus_per_instance"] == 8 and inputs["slo.tpot_ms"] == 25
    assert "log-normal" in inputs["workload.input_tokens"] and inputs["workload.output_tokens"] == 1024
    rows = list(csv.DictReader(io.StringIO(ok(cli("optimize", "budget-case-study", "-f", "csv")).stdout)))
    assert rows[0]["tool_version"] == __version__ and rows[0]["prices.local_usd_per_gpu_hour"] == "2.25"
    assert float(rows[0]["load.arrival_req_per_s"]) == 30 and rows[0]["input.prfaas.hardware"] == "h200"


def test_format_follows_the_extension(tmp_path):
    out = tmp_path / "plan.json"
    ok(cli("optimize", "paper-case-study", "-o", out))
    assert json.loads(out.read_text())["n_prfaas"] == 4
    bad = cli("optimize", "paper-case-study", "-f", "json", "-o", tmp_path / "plan.xlsx")
    assert bad.exit_code == 2 and "contradicts the extension" in bad.stderr
    assert not (tmp_path / "plan.xlsx").exists()
    unknown = cli("kv", "-m", "minimax-m2.5", "-H", "h200", "-o", tmp_path / "kv.txt")
    assert unknown.exit_code == 2 and "cannot tell the format" in unknown.stderr


@pytest.mark.parametrize("args", [["whatif", "paper-case-study"], ["kv", "-m", "minimax-m2.5", "-H", "h200", "--cluster-gpus", "512"],
                                  ["optimize", "paper-case-study"], ["optimize", "budget-case-study"]])
def test_no_number_is_cut_at_80_columns(args):
    out = ok(cli(*args, env={"COLUMNS": "80"})).stdout
    assert "\u2026" not in out
    assert max(len(line) for line in out.splitlines()) <= 80
