"""Assemble the report: validate → QC → aggregate → tables → figures, then write every format."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from regnet.errors import UserError
from regnet.report import aggregate, plots, render, tables
from regnet.report.inputs import StudyInfo
from regnet.report.qc import QCResult, QCRules, apply_qc
from regnet.report.validate import system_order, validate

log = logging.getLogger(__name__)

SIMULATED_BANNER = "PRODUCED BY SIMULATED RATERS — not human judgements"


@dataclass(frozen=True)
class ReportOptions:
    rules: QCRules = field(default_factory=QCRules)
    real_system: str = "real"
    # statsmodels' crossed-effects fits (VB for the logistic model, REML for MixedLM) grow
    # roughly with votes x (raters + items): about 1 s at 550 votes and 4 s at 1,700 on a
    # busy 2-core machine, minutes beyond. Past this many votes per model the table says why no
    # mixed model was fitted.
    mixed_max_votes: int = 2000
    plots: bool = True
    title: str = "regnet-bench human evaluation"
    command: str = ""


@dataclass
class Report:
    title: str
    source: str
    banner: str | None
    rules: QCRules
    command: str
    tables: list[tables.Table]
    qc: QCResult
    systems: list[str]
    plots: dict[str, Path] = field(default_factory=dict)

    def table(self, key: str) -> tables.Table:
        return next(t for t in self.tables if t.key == key)


def build_report(raw: pd.DataFrame, source: str, study: StudyInfo | None = None,
                 options: ReportOptions = ReportOptions()) -> Report:
    df = validate(raw, source, study)
    # Exposure control (mturk/exposure.py): state the design; drop votes that broke it.
    from mturk.exposure import for_report

    df, design_table = for_report(df, study.path if study else None)
    banner = SIMULATED_BANNER if df["simulated"].astype(bool).any() else None
    qc = apply_qc(df, options.rules)
    if qc.kept.empty:
        reasons = "; ".join(f"{e.rule}: {e.votes}" for e in qc.exclusions) or "only gold/catch trials"
        raise UserError(f"{source}: no main-trial vote left after QC ({reasons})")
    order = system_order(qc.kept, study, options.real_system)
    expected = aggregate.expected_votes(df, study.votes_per_item if study else None)
    mv = options.rules.min_votes_per_item

    pv = aggregate.pair_votes(qc.kept, order)
    rv = aggregate.real_fake_votes(qc.kept)
    mos = aggregate.mos_votes(qc.kept)
    out = [tables.qc_table(qc)]
    if design_table is not None:
        out.insert(0, design_table)
    # Who the screening test (consent, headphone check) let in: DIR/screening.csv from `collect`.
    screened = (study.path if study else Path(source).parent) / "screening.csv"
    if screened.is_file():
        from mturk.screening import report_table

        out.insert(0, report_table(screened))
    if len(pv):
        out.append(tables.preference_table(pv, aggregate.pair_items(pv), order,
                                           expected.get("pair", 0), mv, options.mixed_max_votes))
    if len(rv):
        out.append(tables.real_fake_table(rv, aggregate.real_fake_items(rv), order,
                                          options.real_system, mv))
    if len(mos):
        out += list(tables.mos_tables(mos, aggregate.mos_items(mos), order,
                                      options.mixed_max_votes))
    out.append(tables.agreement_table(pv, rv, mos))
    out.append(tables.rater_table(df, qc, pv, rv))
    return Report(options.title, source, banner, options.rules, options.command, out, qc, order)


def write_report(report: Report, out_dir: str | Path, with_plots: bool = True) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if with_plots:
        makers = {"table1_preference": ("Preference (2AFC)", plots.preference_plot,
                                        "preference.png"),
                  "table2_real_fake": ("Real or fake per class", plots.real_fake_plot,
                                       "real_fake.png"),
                  "table_mos": ("MOS per criterion", plots.mos_plot, "mos.png")}
        for t in report.tables:
            if t.key in makers:
                name, fn, fname = makers[t.key]
                p = fn(t.data, out / fname, report.banner)
                if p is not None:
                    report.plots[name] = p
    written = [render.write_markdown(report, out / "report.md"),
               render.write_latex(report, out / "report.tex"),
               render.write_html(report, out / "report.html")]
    written += render.write_csvs(report, out)
    written += list(report.plots.values())
    return written
