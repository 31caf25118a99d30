"""Executed notebooks → offline HTML pages: code hidden, plotly figures turned into HTML that draws
with the packet's one shared plotly.js, and the lab stylesheet shared instead of inlined per page."""
from __future__ import annotations

import functools
import json
import re
import shutil
from pathlib import Path

from nbconvert import HTMLExporter
from nbconvert.preprocessors import Preprocessor

TEMPLATES = Path(__file__).resolve().parent / "templates"
PLOTLY_MIME = "application/vnd.plotly.v1+json"

EXTRA_CSS = """
/* auditbook packet */
body.jp-Notebook { max-width: 1200px; margin: 0 auto; }
/* tables take the page's width; a header breaks only between its words (its longest word sets its
   column's least width); a data cell wraps between words, and inside a word only one too long for any line */
.jp-RenderedHTMLCommon table.ab-table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 13px;
  width: 100%; table-layout: auto; }
table.ab-table th, table.ab-table td { border: 1px solid #d0d7de; padding: 3px 8px; text-align: left !important;
  vertical-align: top; }
table.ab-table th { background: #f3f5f7; white-space: normal; word-break: keep-all; overflow-wrap: normal; hyphens: none; }
table.ab-table td { overflow-wrap: break-word; word-break: normal; }
table.ab-table code { font-size: 12px; white-space: pre-wrap; overflow-wrap: break-word; }
.ab-capped { margin: 0.5em 0 0.25em; }
.ab-status { font-weight: 600; padding: 1px 6px; border-radius: 3px; color: #fff; }
.ab-PASS { background: #1a7f37; } .ab-FAIL { background: #cf222e; } .ab-ERROR { background: #bf8700; }
.ab-EXCEPTED { background: #8250df; } .ab-NEEDS_EVIDENCE { background: #0969da; } .ab-NONE { background: #6e7781; }
.ab-banner { border: 2px solid #bf8700; background: #fff8c5; padding: 8px 12px; margin: 8px 0; }
.ab-muted { color: #57606a; }
"""


class PlotlyToHTML(Preprocessor):
    """Each plotly mimetype output becomes a text/html div with a stable id (cell and output index) and
    the figure as inert JSON beside it (`<script type="application/json" data-figure=ID>`): the page is
    read without parsing plotly.js, and the packet's assets/charts.js draws the figures with the one
    shared plotly.js once the page has loaded."""

    def preprocess_cell(self, cell, resources, index):
        for j, output in enumerate(cell.get("outputs", [])):
            data = output.get("data") or {}
            if PLOTLY_MIME in data:
                spec = data[PLOTLY_MIME]
                fig = json.loads(spec) if isinstance(spec, str) else dict(spec)
                data["text/html"] = figure_html(fig, f"fig-{index}-{j}")
                del data[PLOTLY_MIME]
        return cell, resources


def figure_html(fig: dict, div_id: str) -> str:
    """A figure's div (its height reserved, so the page does not move when it is drawn) and its JSON,
    which no browser runs: every "<" is escaped, so no text in it can close the script element."""
    height = (fig.get("layout") or {}).get("height")
    height = int(height) if isinstance(height, (int, float)) and 0 < height < 10000 else 450
    spec = json.dumps({k: fig[k] for k in ("data", "layout", "config") if k in fig}, separators=(",", ":"),
                      ensure_ascii=False).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (f'<div id="{div_id}" class="ab-chart" style="height:{height}px;width:100%"></div>'
            f'<script type="application/json" data-figure="{div_id}">{spec}</script>')


class PacketHTMLExporter(HTMLExporter):
    """HTMLExporter without its final BeautifulSoup pass (alt text and tabindex tweaks that re-parse
    the whole page: two thirds of the export time of a page with tables)."""

    def from_notebook_node(self, nb, resources=None, **kw):
        from nbconvert.exporters.templateexporter import TemplateExporter
        from nbconvert.filters.highlight import Highlight2HTML
        from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
        langinfo = nb.metadata.get("language_info", {})
        lexer = langinfo.get("pygments_lexer", langinfo.get("name", None))
        resources = self._init_resources(resources)
        self.register_filter("highlight_code", self.filters.get(
            "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)))
        self.register_filter("filter_data_type", WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources))
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)


@functools.lru_cache(maxsize=1)
def _exporter() -> HTMLExporter:
    from traitlets.config import Config
    config = Config()
    config.TagRemovePreprocessor.remove_cell_tags = {"analyst-only"}  # notes for analysts, not auditors
    config.TagRemovePreprocessor.enabled = True
    exporter = PacketHTMLExporter(config=config, template_name="auditbook_packet", extra_template_basedirs=[str(TEMPLATES)],
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(PlotlyToHTML(), enabled=True)
    return exporter


def notebook_html(nb, asset_prefix: str, title: str) -> str:
    nb.metadata["title"] = title
    body, _ = _exporter().from_notebook_node(nb, resources={"asset_prefix": asset_prefix})
    return body


def _lab_static() -> Path:
    for base in _exporter().template_paths:
        candidate = Path(base) / "static" / "index.css"
        if candidate.is_file() and Path(base).name == "lab":
            return candidate.parent
    raise RuntimeError("nbconvert's lab template stylesheet was not found")


# plotly.js-cartesian-dist-min 4.1.1 from npm (MIT: plotly-cartesian.LICENSE beside it), sha256
# 79542150855a52c5…: see docs/packets.md; its version must be the plotly package's plotly.js
PLOTLY_JS_VERSION = "4.1.1"
PLOTLY_BUNDLE = TEMPLATES / "auditbook_packet" / "plotly-cartesian.min.js"

def write_assets(assets: Path) -> None:
    """assets/plotly.min.js, assets/charts.js and assets/notebook.css: shared by every page of the packet.
    plotly.min.js is plotly.js's cartesian bundle (PLOTLY_BUNDLE: the packet's charts are bars and
    heatmaps), the same plotly.js version as the plotly package that built the figures: a third of
    the full bundle to parse, so a page's charts draw sooner (docs/benchmarks.md)."""
    import plotly
    assets.mkdir(parents=True, exist_ok=True)
    full = (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text()[:200]
    if f"v{PLOTLY_JS_VERSION}" not in full:
        raise RuntimeError(f"{PLOTLY_BUNDLE.name} is plotly.js v{PLOTLY_JS_VERSION}; the plotly package carries "
                           f"another version: vendor its cartesian bundle (docs/packets.md)")
    shutil.copyfile(PLOTLY_BUNDLE, assets / "plotly.min.js")
    shutil.copyfile(TEMPLATES / "auditbook_packet" / "charts.js", assets / "charts.js")
    static = _lab_static()
    lab_index = (Path(static).parent / "index.html.j2").read_text()
    inline = re.search(r"<style type=\"text/css\">(.*?)</style>", lab_index.split("block notebook_css", 1)[1], re.S)
    css = "\n".join([(static / "index.css").read_text(), (static / "theme-light.css").read_text(),
                     inline.group(1) if inline else "", EXTRA_CSS])
    (assets / "notebook.css").write_text(css)


KEPT_OUTPUTS = ("stream", "error")  # printed text and a failed cell's error stay in the packet's notebook


def page_outputs_removed(nb, page_path: str, page_html: str):
    """The executed notebook as the packet keeps it, beside its page: every cell's code, parameters,
    execution count and timing, its printed text and errors, but not its display outputs (tables,
    charts), which are the page itself. The notebook's metadata names the page and the SHA-256 of its
    bytes, and the signed manifest lists both: the notebook says how the page was produced, the page is
    what it produced. Changes `nb` in place and returns it."""
    import hashlib
    removed = 0
    for cell in nb.cells:
        outputs = cell.get("outputs")
        if not outputs:
            continue
        kept = [o for o in outputs if o.get("output_type") in KEPT_OUTPUTS]
        removed += len(outputs) - len(kept)
        cell["outputs"] = kept
    nb.metadata["auditbook"] = {
        "page": page_path, "page_sha256": hashlib.sha256(page_html.encode("utf-8")).hexdigest(),
        "display_outputs_removed": removed,
        "note": "the display outputs of this executed notebook (tables and charts) are its page, not repeated here"}
    return nb
