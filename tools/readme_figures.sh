#!/usr/bin/env bash
# Re-runs every command whose figures README.md quotes (2-core CPU: about 1.5 hours), into runs/,
# and copies each run's config.json + summary.json into docs/results/ for `launch.report`.
#   bash tools/readme_figures.sh [digits|finetune|audit|bench]...   (default: all)
# bench --compare_torch needs DMKERAS_TORCH_PYTHON (a Python with PyTorch).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
parts=${*:-digits finetune audit bench}

keep() {  # keep <run dir> <name>: the run's summary for launch.report
  mkdir -p "docs/results/digits/$2"
  cp "$1/config.json" "$1/summary.json" "docs/results/digits/$2/"
}

for part in $parts; do
  case $part in
  digits)
    for row in sym20 sym50 sym80 asym40; do
      $PY -m launch.train --flagfile=launch/configs/digits_$row.cfg --workdir=runs/digits_$row --verbose=2
      keep runs/digits_$row "dividemix_$row"
      $PY -m launch.train --flagfile=launch/configs/digits_$row.cfg --workdir=runs/digits_${row}_standard --method=standard --verbose=2
      keep runs/digits_${row}_standard "standard_$row"
    done
    cp runs/digits_sym50/curves.png docs/digits_sym50_curves.png
    cp runs/digits_sym50/loss_distribution.png docs/digits_sym50_loss_distribution.png
    cp runs/digits_sym50_standard/curves.png docs/digits_sym50_standard_curves.png
    ;;
  finetune)
    $PY -m launch.demo_folder --out=data/digits_png
    $PY -m launch.train --flagfile=launch/configs/common_digits.cfg --dataset=folder:data/digits_png \
      --noise_mode=sym --noise_rate=0.4 --lambda_u=25 --weights=runs/digits_sym50/net1.keras --freeze_epochs=2 \
      --epochs=20 --warm_up=3 --lr=0.01 --lr_drop_epoch=15 --workdir=runs/finetune --verbose=2
    keep runs/finetune finetune
    ;;
  audit)
    $PY -m launch.audit --flagfile=launch/configs/digits_sym50.cfg --from_run=runs/digits_sym50 --retrain --workdir=runs/audit_sym50
    $PY -m launch.audit --flagfile=launch/configs/digits_asym40.cfg --epochs=10 --scoring=ce --retrain --workdir=runs/audit_asym40_gmm
    $PY -m launch.audit --flagfile=launch/configs/digits_asym40.cfg --epochs=10 --from_run=runs/audit_asym40_gmm/scoring_model --division=per_class_gmm --class_floor=0.3 --retrain --workdir=runs/audit_asym40_per_class_gmm
    $PY -m launch.audit --flagfile=launch/configs/digits_asym40.cfg --epochs=10 --from_run=runs/audit_asym40_gmm/scoring_model --division=class_floor --class_floor=0.3 --retrain --workdir=runs/audit_asym40_class_floor
    cp runs/audit_asym40_gmm/sweep.png docs/audit_asym40_gmm_sweep.png
    $PY -m launch.audit --flagfile=launch/configs/digits_sym50.cfg --from_run=runs/digits_sym50 --thresholds=0.5 --compare=cleanlab --workdir=runs/audit_sym50_cleanlab
    $PY -m launch.audit --flagfile=launch/configs/digits_asym40.cfg --epochs=10 --from_run=runs/audit_asym40_gmm/scoring_model --thresholds=0.5 --compare=cleanlab --workdir=runs/audit_asym40_cleanlab
    ;;
  bench)
    $PY -m tools.bench --backbone=preact_resnet18 --batch_size=64 --input_size=32 --compare_torch --out=docs/bench/preact_b64.json
    ;;
  *) echo "unknown part $part" >&2; exit 2 ;;
  esac
done
