"""Assemble the report: validate → QC → aggregate → tables → figures, then write every format."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from regnet.errors import UserError
from mturk.report import aggregate, plots, render, tables
from mturk.report.inputs import StudyInfo
from mturk.report.qc import QCResult, QCRules, apply_qc
from mturk.report.validate import system_order, validate

log = logging.getLogger(__name__)

SIMULATED_BANNER = "PRODUCED BY SIMULATED RATERS — not human judgements"


@dataclass(frozen=True)
class ReportOptions:
    rules: QCRules = field(default_factory=QCRules)
    real_system: str = "real"
    # Mixed models are exact sparse REML fits (mturk.report.mixed) at every size; a limit is
    # only for a user who wants one (None: fit every model).
    mixed_max_votes: int | None = None
    plots: bool = True
    title: str = "regnet-bench human evaluation"
    command: str = ""
    # The system comparisons are oriented by (None: the study's focus, else the first system).
    focus: str | None = None
    # Also fit the Laplace logistic GLMM for each 2AFC comparison (slower; conditional scale).
    glmm: bool = False
    # qc_decisions.csv from collect/approve/reject: what was refused pay stays out.
    decisions: Path | None = None
    # evaluate's objective_clips.csv: adds the human-vs-machine table.
    objective: Path | None = None


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
    paid = None
    if options.decisions is not None:
        from mturk.qc import read_decisions

        paid, _ = read_decisions(options.decisions)
    qc = apply_qc(df, options.rules, _mturk_study(study), paid)
    if options.decisions is not None:
        qc.notes.insert(0, f"Pay decisions read from {options.decisions} (approve/reject); the "
                        "rules above are the ones recorded with them unless a flag changed one.")
    if qc.kept.empty:
        reasons = "; ".join(f"{e.rule}: {e.votes}" for e in qc.exclusions) or "only gold/catch trials"
        raise UserError(f"{source}: no main-trial vote left after QC ({reasons})")
    focus = options.focus or (study.focus if study else None)
    if options.focus and not ((qc.kept["left_system"] == options.focus).any()
                              or (qc.kept["right_system"] == options.focus).any()):
        raise UserError(f"--focus: no kept vote involves system {options.focus!r}")
    order = system_order(qc.kept, study, options.real_system, focus)
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
                                           expected.get("pair", 0), mv, options.mixed_max_votes,
                                           glmm=options.glmm))
    if len(rv):
        out.append(tables.real_fake_table(rv, aggregate.real_fake_items(rv), order,
                                          options.real_system, mv, options.mixed_max_votes))
    if len(mos):
        out += list(tables.mos_tables(mos, aggregate.mos_items(mos), order,
                                      options.mixed_max_votes))
    out.append(tables.agreement_table(pv, rv, mos))
    if options.objective is not None:
        from mturk.report.objective import load_objective, objective_table

        obj, metrics = load_objective(options.objective)
        out.append(objective_table(qc.kept, obj, metrics))
    out.append(tables.rater_table(df, qc, pv, rv))
    return Report(options.title, source, banner, options.rules, options.command, out, qc, order)


def _mturk_study(study: StudyInfo | None):
    """The typed study (trials of each HIT: unanswered ones count in QC) when the folder is a
    regnet-bench study; None otherwise."""
    return study.study if study is not None else None


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
