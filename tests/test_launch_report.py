"""launch.report: the markdown table of finished runs."""

import json

from launch import report


def _run(path, method, auc, **extra):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"method": method, "noise_mode": "sym", "noise_rate": 0.5}))
    summary = {"noise_rate_actual": 0.462, "test_acc_best": 0.98989, "test_acc_last": 0.98384, "division_auc_last": auc,
               "labeled_fraction_last": None if auc is None else 0.5333, "epochs": 100, "epochs_planned": 100, "wall_time_s": 208.6,
               **extra}
    (path / "summary.json").write_text(json.dumps(summary))
    return str(path)


def test_table_rows(tmp_path):
    text = report.table([_run(tmp_path / "dm", "dividemix", 0.99971), _run(tmp_path / "ce", "standard", None)])
    lines = text.splitlines()
    assert lines[0].startswith("| run | method | noise |") and len(lines) == 4
    assert lines[2] == "| dm | dividemix | sym 0.5 | 0.462 | 98.99% | 98.38% | 0.9997 | 0.533 | 100/100 | 209 s |"
    assert lines[3] == "| ce | standard | sym 0.5 | 0.462 | 98.99% | 98.38% | - | - | 100/100 | 209 s |"


def test_val_selected_accuracy_is_a_column_when_a_run_has_it(tmp_path):
    runs = [_run(tmp_path / "c1m", "dividemix", 0.9, test_acc_val_selected=0.7476, val_acc_best=0.8),
            _run(tmp_path / "plain", "dividemix", 0.9, test_acc_val_selected=None)]
    lines = report.table(runs).splitlines()
    assert "| test acc best | test acc last 10 | test acc val-selected | division AUC |" in lines[0]
    assert lines[2] == "| c1m | dividemix | sym 0.5 | 0.462 | 98.99% | 98.38% | 74.76% | 0.9000 | 0.533 | 100/100 | 209 s |"
    assert lines[3] == "| plain | dividemix | sym 0.5 | 0.462 | 98.99% | 98.38% | - | 0.9000 | 0.533 | 100/100 | 209 s |"
    assert all(len(line.split("|")) == len(lines[0].split("|")) for line in lines)


def test_unfinished_directory_is_one_clear_error(tmp_path, capsys):
    assert report.main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: not a finished run directory")
