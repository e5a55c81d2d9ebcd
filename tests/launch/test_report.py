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
    lines = report.table(runs, over=()).splitlines()  # the same config: one row each, not grouped
    assert "| test acc best | test acc last 10 | test acc val-selected | division AUC |" in lines[0]
    assert lines[2] == "| c1m | dividemix | sym 0.5 | 0.462 | 98.99% | 98.38% | 74.76% | 0.9000 | 0.533 | 100/100 | 209 s |"
    assert lines[3] == "| plain | dividemix | sym 0.5 | 0.462 | 98.99% | 98.38% | - | 0.9000 | 0.533 | 100/100 | 209 s |"
    assert all(len(line.split("|")) == len(lines[0].split("|")) for line in lines)


def test_unfinished_directory_is_one_clear_error(tmp_path, capsys):
    assert report.main(["report", str(tmp_path)]) == 2
    assert capsys.readouterr().err.startswith("error: not a finished run directory")


def _seeded(path, seed, best, last, **extra):
    path.mkdir()
    config = {"method": "dividemix", "noise_mode": "sym", "noise_rate": 0.8, "seed": seed, "workdir": str(path), "lr": 0.02}
    (path / "config.json").write_text(json.dumps(config))
    summary = {"noise_rate_actual": 0.72, "test_acc_best": best, "test_acc_last": last, "division_auc_last": 0.9,
               "labeled_fraction_last": 0.3, "epochs": 14, "epochs_planned": 14, "wall_time_s": 100.0 + seed, **extra}
    (path / "summary.json").write_text(json.dumps(summary))
    return str(path)


def test_runs_differing_only_in_seed_are_one_row_of_mean_and_sample_std(tmp_path):
    runs = [_seeded(tmp_path / f"fm_sym80_seed{s}", s, best, last) for s, best, last in ((0, 0.90, 0.88), (1, 0.92, 0.89), (2, 0.91, 0.87))]
    lines = report.table(runs).splitlines()
    assert len(lines) == 3
    # best: mean 91.00, sample std 1.00; last: mean 88.00, std 1.00; wall time: 101 ± 1
    assert lines[2] == (
        "| fm_sym80 (3 runs) | dividemix | sym 0.8 | 0.720 ± 0.000 | 91.00 ± 1.00% | 88.00 ± 1.00% | 0.9000 ± 0.0000 "
        "| 0.300 ± 0.000 | 14/14 | 101 ± 1 s |"
    )
    assert len(report.table(runs, over=()).splitlines()) == 5  # --group_over=none: a row per run


def test_a_setting_that_differs_is_its_own_row(tmp_path):
    a = _seeded(tmp_path / "a_seed0", 0, 0.9, 0.9)
    b = _seeded(tmp_path / "b_seed1", 1, 0.9, 0.9)
    config = json.loads((tmp_path / "b_seed1" / "config.json").read_text())
    (tmp_path / "b_seed1" / "config.json").write_text(json.dumps({**config, "lr": 0.05}))
    assert [line.split(" | ")[0] for line in report.table([a, b]).splitlines()[2:]] == ["| a_seed0", "| b_seed1"]
    # seeds x splits: split_seed joins the fields a row varies over
    c = _seeded(tmp_path / "a_split1", 0, 0.8, 0.8)
    config = json.loads((tmp_path / "a_split1" / "config.json").read_text())
    (tmp_path / "a_split1" / "config.json").write_text(json.dumps({**config, "split_seed": 1}))
    (tmp_path / "a_seed0" / "config.json").write_text(json.dumps({**json.loads((tmp_path / "a_seed0" / "config.json").read_text()), "split_seed": 0}))
    assert len(report.table([a, c]).splitlines()) == 4
    assert report.table([a, c], over=("seed", "split_seed")).splitlines()[2].startswith("| a (2 runs) | dividemix | sym 0.8 | 0.720 ± 0.000 | 85.00 ± 7.07% |")


def test_cost_columns_and_a_clean_run(tmp_path):
    run = _seeded(tmp_path / "clean", 0, 0.93, 0.92, ssl_epoch_time_s=None, warmup_epoch_time_s=41.6, peak_rss_mb=1244.7)
    config = json.loads((tmp_path / "clean" / "config.json").read_text())
    (tmp_path / "clean" / "config.json").write_text(json.dumps({**config, "noise_mode": "none", "noise_rate": 0.5}))
    lines = report.table([run]).splitlines()
    assert lines[0].endswith("| epochs | time / epoch | wall time | peak RSS |")
    assert lines[2] == "| clean | dividemix | none | - | 93.00% | 92.00% | 0.9000 | 0.300 | 14/14 | 42 s | 100 s | 1245 MiB |"


def test_unknown_option_is_refused(capsys):
    assert report.main(["report", "--over=seed", "x"]) == 2
    assert "unknown option --over=seed" in capsys.readouterr().err


def test_help_prints_the_usage_on_stdout_and_succeeds(capsys):
    assert report.main(["report", "--help"]) == 0
    out = capsys.readouterr()
    assert "--group_over" in out.out and out.err == ""


def test_val_acc_final_is_a_column_when_a_run_has_a_validation_set(tmp_path):
    runs = [_seeded(tmp_path / "tuned", 0, 0.9, 0.88, val_acc_final=0.8123), _seeded(tmp_path / "other", 1, 0.9, 0.88)]
    config = json.loads((tmp_path / "other" / "config.json").read_text())
    (tmp_path / "other" / "config.json").write_text(json.dumps({**config, "lr": 0.1}))
    lines = report.table(runs).splitlines()
    assert "| test acc last 10 | val acc final | division AUC |" in lines[0]
    assert "| 88.00% | 81.23% | 0.9000 |" in lines[2] and "| 88.00% | - | 0.9000 |" in lines[3]


def test_a_row_over_seeds_keeps_its_split_in_the_name():
    from launch.report import _strip_suffixes

    assert _strip_suffixes("dividemix_sym80_split1_seed2", ("seed",)) == "dividemix_sym80_split1"
    assert _strip_suffixes("dividemix_sym80_split1_seed2", ("seed", "split_seed")) == "dividemix_sym80"
    assert _strip_suffixes("fmnist_sym50_seed0", ("seed",)) == "fmnist_sym50"
    assert _strip_suffixes("digits_sym80", ()) == "digits_sym80"


def test_switches_column_names_augdesc_and_unicon_when_a_run_used_one(tmp_path):
    plain = _seeded(tmp_path / "plain", 0, 0.9, 0.88)
    both = _seeded(tmp_path / "both", 0, 0.9, 0.91)
    config = json.loads((tmp_path / "both" / "config.json").read_text())
    (tmp_path / "both" / "config.json").write_text(json.dumps({**config, "augdesc": "ws", "division": "unicon"}))
    lines = report.table([plain, both]).splitlines()
    assert lines[0].startswith("| run | method | noise | switches | wrong labels |")
    assert lines[2].startswith("| plain | dividemix | sym 0.8 | - | ") and lines[3].startswith("| both | dividemix | sym 0.8 | augdesc ws + unicon | ")
    assert "switches" not in report.table([plain])  # no run used one: no column
    (tmp_path / "both" / "config.json").write_text(json.dumps({**config, "augdesc": "ws", "division": "unicon", "contrastive_weight": 0.025}))
    assert "| augdesc ws + unicon + contrastive 0.025 | " in report.table([plain, both])


def test_plot_draws_one_bar_per_row(tmp_path, monkeypatch):
    from dmkeras import plots

    runs = [_seeded(tmp_path / f"a_seed{s}", s, 0.9, acc) for s, acc in enumerate((0.80, 0.84))]
    drawn = {}
    monkeypatch.setattr(plots, "accuracy_bars", lambda labels, means, stds, path: drawn.update(labels=labels, means=means, stds=stds))
    assert report.main(["report", f"--plot={tmp_path / 'bars.png'}", *runs]) == 0
    assert drawn["labels"] == ["a (n=2)"]
    assert abs(drawn["means"][0] - 82.0) < 1e-9 and abs(drawn["stds"][0] - 2 ** 0.5 * 2) < 1e-9  # sample std of 80, 84
    monkeypatch.undo()
    report.plot(runs, str(tmp_path / "bars.png"))
    assert (tmp_path / "bars.png").read_bytes()[:4] == b"\x89PNG"


def test_a_config_from_before_a_field_existed_groups_with_runs_at_its_default(tmp_path):
    old = _seeded(tmp_path / "old_seed0", 0, 0.9, 0.88)  # no contrastive_weight: written before it existed
    new = _seeded(tmp_path / "new_seed1", 1, 0.9, 0.86)
    config = json.loads((tmp_path / "new_seed1" / "config.json").read_text())
    (tmp_path / "new_seed1" / "config.json").write_text(json.dumps({**config, "contrastive_weight": 0.0, "momentum_buffer": "keras"}))
    assert report.group_runs([old, new]) == [[old, new]]
    (tmp_path / "new_seed1" / "config.json").write_text(json.dumps({**config, "contrastive_weight": 0.025}))
    assert report.group_runs([old, new]) == [[old], [new]]
