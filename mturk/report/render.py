"""Write a built report as Markdown, LaTeX, CSV (one file per table) and one self-contained HTML
page (figures inlined as base64 PNG)."""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mturk.report.build import Report

from mturk.report.tables import Table

_TEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                "^": r"\textasciicircum{}"}
# Unicode that pdflatex without extra packages cannot set.
_TEX_UNICODE = {"–": "--", "—": "---", "−": "$-$", "κ": r"$\kappa$", "α": r"$\alpha$",
                "≥": r"$\geq$", "×": r"$\times$", "·": r"$\cdot$"}
_TEX_RE = re.compile("|".join(re.escape(k) for k in _TEX_SPECIAL))


def tex_escape(s: str) -> str:
    s = _TEX_RE.sub(lambda m: _TEX_SPECIAL[m.group()], str(s))
    for k, v in _TEX_UNICODE.items():
        s = s.replace(k, v)
    return s


def _md_cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def table_markdown(t: Table) -> str:
    d = t.display
    lines = [f"### {t.title}", ""]
    if d.empty:
        lines.append(f"_{t.empty}_")
    else:
        lines.append("| " + " | ".join(_md_cell(c) for c in d.columns) + " |")
        lines.append("|" + "|".join("---" for _ in d.columns) + "|")
        for row in d.itertuples(index=False):
            lines.append("| " + " | ".join(_md_cell(v) for v in row) + " |")
    lines.append("")
    lines += [f"- {n}" for n in t.notes]
    return "\n".join(lines) + "\n"


def table_latex(t: Table, banner: str | None) -> str:
    d = t.display
    cols = "l" * min(2, len(d.columns)) + "r" * max(0, len(d.columns) - 2)
    out = ["\\begin{table}[t]", "\\centering", "\\small",
           f"\\caption{{{tex_escape(t.title)}" +
           (f" ({tex_escape(banner)})" if banner else "") + "}",
           f"\\label{{tab:{t.key.replace('_', '-')}}}"]
    if d.empty:
        out.append(tex_escape(t.empty))
    else:
        out += [f"\\begin{{tabular}}{{{cols}}}", "\\toprule",
                " & ".join(tex_escape(c) for c in d.columns) + " \\\\", "\\midrule"]
        out += [" & ".join(tex_escape(v) for v in row) + " \\\\" for row in d.itertuples(index=False)]
        out += ["\\bottomrule", "\\end{tabular}"]
    if t.notes:
        out.append("\\par\\smallskip\\footnotesize " + " ".join(tex_escape(n) for n in t.notes))
    out.append("\\end{table}")
    return "\n".join(out) + "\n"


def _header(r: "Report") -> list[str]:
    lines = [f"Source: {r.source}", f"Command: `{r.command}`" if r.command else "",
             "QC rules: " + ", ".join(f"{k}={v}" for k, v in r.rules.describe())]
    return [x for x in lines if x]


def write_markdown(r: "Report", path: Path) -> Path:
    parts = [f"# {r.title}", ""]
    if r.banner:
        parts += [f"> **{r.banner}**", ""]
    parts += [f"- {x}" for x in _header(r)] + [""]
    for t in r.tables:
        parts.append(table_markdown(t))
        if r.banner:
            parts.append(f"_{r.banner}_\n")
    for name, p in r.plots.items():
        parts.append(f"![{name}]({p.name})\n")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def write_latex(r: "Report", path: Path) -> Path:
    head = ["% " + tex_escape(r.title), "% needs \\usepackage{booktabs}"]
    if r.banner:
        head.append("% " + tex_escape(r.banner))
    head += ["% " + tex_escape(x) for x in _header(r)]
    body = [table_latex(t, r.banner) for t in r.tables]
    path.write_text("\n".join(head) + "\n\n" + "\n".join(body), encoding="utf-8")
    return path


def write_csvs(r: "Report", out: Path) -> list[Path]:
    paths = []
    for t in r.tables:
        p = out / f"{t.key}.csv"
        data = t.data.copy()
        # A CSV travels alone (into a spreadsheet, a paper's supplement): the label goes with it.
        data.insert(0, "simulated_raters", bool(r.banner))
        data.to_csv(p, index=False)
        paths.append(p)
    return paths


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:.5em 0;font-size:.9em}th,td{border:1px solid #ccc;
padding:.25em .5em;text-align:right}th{background:#f3f3f3}td:first-child,td:nth-child(2){text-align:
left}.banner{background:#b00020;color:#fff;padding:.6em 1em;font-weight:bold;font-size:1.1em}
.notes{font-size:.85em;color:#555}img{max-width:100%}"""


def write_html(r: "Report", path: Path) -> Path:
    e = html.escape
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{e(r.title)}</title><style>{_CSS}</style></head><body>"]
    if r.banner:
        parts.append(f"<div class=\"banner\">{e(r.banner)}</div>")
    parts.append(f"<h1>{e(r.title)}</h1><ul>" + "".join(f"<li>{e(x)}</li>" for x in _header(r))
                 + "</ul>")
    for t in r.tables:
        parts.append(f"<h2>{e(t.title)}</h2>")
        if r.banner:
            parts.append(f"<p class=\"banner\">{e(r.banner)}</p>")
        if t.display.empty:
            parts.append(f"<p><em>{e(t.empty)}</em></p>")
        else:
            parts.append("<table><thead><tr>" + "".join(f"<th>{e(str(c))}</th>" for c in
                                                        t.display.columns) + "</tr></thead><tbody>")
            for row in t.display.itertuples(index=False):
                parts.append("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>")
            parts.append("</tbody></table>")
        parts.append("<ul class=\"notes\">" + "".join(f"<li>{e(n)}</li>" for n in t.notes)
                     + "</ul>")
    for name, p in r.plots.items():
        b64 = base64.b64encode(p.read_bytes()).decode("ascii")
        parts.append(f"<h2>{e(name)}</h2><img alt=\"{e(name)}\" src=\"data:image/png;base64,{b64}\">")
    parts.append("</body></html>")
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
