"""The reference's Clothing1M and WebVision recipes, end to end through their flagfiles on
generated trees in those layouts: pretrained weights with their own input transform, the
labeled-rows semi-supervised step, best-validation selection, the HEAD WebVision transforms.

Only sizes are overridden (tiny images, 2 epochs, 2 batches per epoch), and, for Clothing1M, the
ImageNet weights come from a local file (`--weights=imagenet:FILE`, a seeded random stand-in for
keras' ResNet-50 file: the real one cannot be downloaded here). The two full runs build two
ResNet-50 / InceptionResNetV2 nets and take minutes on a 2-core CPU: `pytest -m slow`; their parts
(the labeled-rows step, the transforms, RandomResizedCrop, the selection) are tested in the default
suite (tests/test_model.py, test_input_transform.py, data/test_augment_resized_crop.py, test_trainer_validation.py)."""

import json
import os

import numpy as np
import pytest

from dmkeras import input_transform
from tests.data.sources.test_image_files import (  # noqa: F401
    digits,
    make_clothing1m,
    rgb,
    write,
    write_lines,
)
from tests.helpers import csv_rows, run_module


def _train(*flags):
    proc = run_module("launch.train", *flags, "--verbose=0", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _read(workdir, name):
    with open(os.path.join(workdir, name)) as f:
        return json.load(f)


@pytest.mark.slow
def test_clothing1m_flagfile_runs_the_reference_recipe(tmp_path, digits, resnet50_imagenet_file):  # noqa: F811
    root = tmp_path / "c1m"
    make_clothing1m(root, digits, clean_for_all_train=True, num_val=4)
    workdir = str(tmp_path / "run")
    _train(
        "--flagfile=launch/configs/clothing1m.cfg", f"--dataset=clothing1m:{root}", f"--workdir={workdir}",
        f"--weights=imagenet:{resnet50_imagenet_file}",
        "--image_size=48,48", "--resize_shorter=52", "--num_batches=2", "--batch_size=4", "--eval_batch_size=8", "--epochs=2",
    )
    config, dataset, summary = (_read(workdir, n) for n in ("config.json", "dataset.json", "summary.json"))
    # the flagfile's recipe, as Train_clothing1M.py
    assert (config["backbone"], config["ssl_rows"], config["confidence_penalty"], config["lambda_u"]) == ("resnet50", "labeled", "on", 0)
    assert (config["mixup_alpha"], config["lr"], config["weight_decay"], config["momentum_buffer"]) == (0.5, 0.002, 1e-3, "torch")
    # the ImageNet weights' own (caffe) transform, recorded in the run directory
    caffe = input_transform.NAMED["caffe"]
    assert dataset["input_transform"]["name"] == "caffe"
    np.testing.assert_allclose(dataset["mean"], caffe.mean)
    np.testing.assert_allclose(dataset["std"], caffe.std)
    # warm-up with the confidence penalty, then the labeled-rows step (no L_u)
    rows = csv_rows(os.path.join(workdir, "metrics.csv"))
    assert [r["phase"] for r in rows] == ["warmup", "ssl"]
    assert float(rows[0]["net1_penalty"]) < 0  # mean negative entropy
    assert float(rows[1]["net1_loss_u"]) == 0.0 and float(rows[1]["net2_loss_u"]) == 0.0
    # best-validation selection on clean_val_key_list.txt
    assert rows[1]["val_acc_net1"] != "" and summary["val_acc_best_net1"] is not None
    assert summary["test_acc_val_selected"] is not None
    assert os.path.isfile(os.path.join(workdir, "best", "net1.weights.h5"))


def test_a_clothing1m_net_fed_another_transform_is_refused(tmp_path, digits, resnet50_imagenet_file):  # noqa: F811
    root = tmp_path / "c1m"
    make_clothing1m(root, digits, clean_for_all_train=True, num_val=0)
    proc = run_module(
        "launch.train", "--flagfile=launch/configs/clothing1m.cfg", f"--dataset=clothing1m:{root}",
        f"--workdir={tmp_path / 'run'}", f"--weights=imagenet:{resnet50_imagenet_file}", "--input_transform=dataset",
        "--image_size=32,32", "--resize_shorter=36", "--num_batches=2", "--batch_size=2", "--epochs=2",
        timeout=600,
    )
    assert proc.returncode == 2
    assert "trained with caffe" in proc.stderr.strip().splitlines()[-1]


def _webvision_tree(root, digits):  # noqa: F811
    """4 classes of WebVision's layout: google/ training images (24x32) in info/train_filelist_google.txt,
    val_images_256/ in info/val_filelist.txt, and the ILSVRC12 val images in imagenet/val/<class>/."""
    train, val = [], []
    for k in range(16):
        key = f"google/q{k % 4 + 1:04d}/{k}.jpg"
        write(root / key, np.concatenate([rgb(digits, k, scale=4), rgb(digits, k + 1, scale=4)], axis=1)[:24])
        train.append(f"{key} {k % 4}")
    for k in range(8):
        write(root / "val_images_256" / f"val{k}.jpg", rgb(digits, 100 + k, scale=4))
        val.append(f"val{k}.jpg {k % 4}")
        write(root / "imagenet" / "val" / str(k % 4) / f"{k}.png", rgb(digits, 200 + k, scale=4))
    write_lines(root / "info" / "train_filelist_google.txt", train)
    write_lines(root / "info" / "val_filelist.txt", val)


@pytest.mark.slow
def test_webvision_flagfile_runs_the_reference_head_recipe(tmp_path, digits):  # noqa: F811
    root = tmp_path / "wv"
    _webvision_tree(root, digits)
    workdir = str(tmp_path / "run")
    _train(
        "--flagfile=launch/configs/webvision.cfg", f"--dataset=webvision:{root}", f"--extra_test_dataset=ilsvrc12:{root / 'imagenet'}",
        f"--workdir={workdir}", "--image_size=20,20", "--resize_shorter=24", "--batch_size=4", "--eval_batch_size=8", "--epochs=2",
    )
    config, summary = _read(workdir, "config.json"), _read(workdir, "summary.json")
    assert (config["augment"], config["ssl_rows"], config["lambda_u"], config["mixup_alpha"]) == ("resized_crop,flip", "labeled", 0, 0.5)
    rows = csv_rows(os.path.join(workdir, "metrics.csv"))
    assert [r["phase"] for r in rows] == ["warmup", "ssl"]
    assert rows[0]["net1_penalty"] == ""  # no confidence penalty in WebVision's warm-up
    assert float(rows[1]["net1_loss_u"]) == 0.0
    assert summary["extra_test_acc_best"] is not None and summary["test_acc_top5_best"] is not None
    assert _read(workdir, "dataset.json")["mean"] == pytest.approx([0.485, 0.456, 0.406])
