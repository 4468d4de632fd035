"""The one CSV floor (`regnet.tables`): user tables read with one-line errors naming the file, and the
spreadsheet-bound files written so that no cell runs as a formula and every cell reads back as written."""

from __future__ import annotations

import pandas as pd
import pytest

from regnet.cli import main
from regnet.errors import UserError
from regnet.tables import read_safe_csv, read_table, to_safe_csv


@pytest.mark.parametrize("content, says", [(b"", "empty file"), (b"a,b\n\xff\xfe,1\n", "not a readable CSV"),
                                           (b'a,b\n"x,1\n', "not a readable CSV"), (b"a,c\n1,2\n", "missing column")])
def test_a_bad_table_is_one_line_naming_the_file(tmp_path, content, says):
    p = tmp_path / "in.csv"
    p.write_bytes(content)
    with pytest.raises(UserError, match=says) as e:
        read_table(p, "a test table", required=("a", "b"), flag="--table")
    assert "\n" not in str(e.value) and str(e.value).startswith(f"--table: {p}")
    with pytest.raises(UserError, match="not found"):
        read_table(tmp_path / "nope.csv")


def test_safe_csv_round_trips_every_cell_and_runs_no_formula(tmp_path):
    cells = ["=cmd|' /C calc'!A0", "+1+1", "-1+1", "@SUM(A1)", "'=already quoted", "plain", "a\rb", "nul\0byte", ""]
    df = pd.DataFrame({"=col": cells, "n": [str(i) for i in range(len(cells))]})
    p = tmp_path / "x.csv"
    p.write_text(to_safe_csv(df), encoding="utf-8", newline="")
    raw = pd.read_csv(p, dtype=str, keep_default_na=False)
    assert not any(v and v[0] in "=+-@" for v in raw.iloc[:, 0]) and not raw.columns[0].startswith("=")
    back = read_safe_csv(p)
    assert list(back.columns) == ["=col", "n"] and list(back["=col"]) == cells


def test_a_report_beside_unreadable_qc_decisions_is_one_line(tmp_path, capsys):
    votes = tmp_path / "votes.csv"
    pd.DataFrame([{"assignment_id": "A1", "worker_id": "W1", "trial_id": "t1", "kind": "pair",
                   "question": "missing", "answer": "left", "left_system": "a", "right_system": "b"}]).to_csv(votes)
    (tmp_path / "qc_decisions.csv").write_bytes(b"assignment_id,pay,keep\n\xff\xfe,x,y\n")
    (tmp_path / "qc_decisions.json").write_text("{}")
    assert main(["report", "--votes", str(votes), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "qc_decisions.csv" in err and len(err.strip().splitlines()) == 1
