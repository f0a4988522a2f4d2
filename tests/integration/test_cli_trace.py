"""`cluster-sim trace stats`: tables, JSON, detection, --format, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cluster_sim.cli import main
from cluster_sim.cli.trace import flatten, format_value

OPENB = "alibaba_gpu_v2023"


def run(capsys, *argv):
    code = main(["trace", "stats", *map(str, argv)])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_pods(traces, capsys):
    code, out, err = run(capsys, traces / OPENB / "openb_pod_list_default.csv", "--json")
    assert code == 0 and not err
    data = json.loads(out)
    assert data["format"] == "alibaba_openb_pods" and data["rows"] == 8152
    assert data["num_gpu"]["0"] == 1088 and data["times"]["scheduled_pods"] == 7255


def test_table_nodes(traces, capsys):
    code, out, _ = run(capsys, traces / OPENB / "openb_node_list_all_node.csv")
    assert code == 0
    assert "alibaba_openb_nodes" in out
    lines = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in out.splitlines()
             if line.count("│") == 3}
    assert lines["nodes"] == "1,523" and lines["gpus"] == "6,212" and lines["by_type.G2.gpus"] == "4,392"


def test_table_gzip_variant_and_philly(traces, capsys):
    code, out, _ = run(capsys, traces / OPENB / "variants" / "openb_pod_list_multigpu20.csv.gz")
    assert code == 0 and "8,324" in out
    code, out, _ = run(capsys, traces / "philly_derived" / "philly_runtime.csv", "--format", "philly_runtime")
    assert code == 0 and "83,154" in out and "1,186" in out


@pytest.mark.parametrize("case", ["missing", "unknown", "badformat", "wrongformat", "dir"])
def test_errors_are_one_line_exit_2(traces, tmp_path, capsys, case):
    odd = tmp_path / "odd.csv"
    odd.write_text("a,b\n1,2\n")
    argv = {"missing": [tmp_path / "nope.csv"], "unknown": [odd], "badformat": [odd, "--format", "xyz"],
            "wrongformat": [traces / "philly_derived" / "philly_runtime.csv", "--format", "alibaba_openb_nodes"],
            "dir": [tmp_path]}[case]
    code, out, err = run(capsys, *argv)
    assert code == 2 and not out
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    expect = {"missing": "no such file", "unknown": "unknown trace format", "badformat": "unknown trace format 'xyz'",
              "wrongformat": "missing column(s) sn", "dir": "not a regular file"}[case]
    assert expect in err


def test_bad_row_reports_line(tmp_path, capsys):
    p = tmp_path / "openb_pod_list_x.csv"
    p.write_text("name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1,1,1,1000\np1,1,1,1,x\n")
    code, _, err = run(capsys, p)
    assert code == 2 and "openb_pod_list_x.csv:3: gpu_milli: not an integer ('x')" in err


def test_helpers():
    assert list(flatten({"a": 1, "b": {"c": 2, "d": {}}})) == [("a", 1), ("b.c", 2), ("b.d", {})]
    assert [format_value(v) for v in (None, True, 1234567, 12.0, 0.12345, 12345.678, [1, 2])] == \
        ["-", "yes", "1,234,567", "12", "0.1235", "12,345.7", "1, 2"]


def test_console_script_subprocess(traces):
    """The installed entry point works end to end (one real process)."""
    exe = Path(sys.executable).with_name("cluster-sim")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-c", "import sys; from cluster_sim.cli import main; "
                                           "sys.exit(main())"]
    res = subprocess.run([*cmd, "trace", "stats", "--json", str(traces / "alibaba_spot_gpu_v2026" / "node_info_df.csv")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["gpus"] == 10412
