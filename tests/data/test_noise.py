"""Tests for dmkeras.data.noise (synthetic label noise and the reference JSON noise files)."""

import json
import os

import numpy as np
import pytest

from dmkeras.data import noise
from dmkeras.data.noise import (
    CIFAR10_ASYM_MAP,
    CIFAR100_COARSE_LABELS,
    asymmetric_noise,
    cifar100_asym_map,
    default_noise_file_name,
    load_noise_file,
    make_noisy_labels,
    noisy_labels_from_file_or_new,
    parse_asym_map,
    realised_noise_rate,
    save_noise_file,
    symmetric_noise,
)
from dmkeras.errors import DmkerasError


def balanced(num_classes, per_class):
    return np.repeat(np.arange(num_classes, dtype=np.int64), per_class)


# --------------------------------------------------------------------------------------------
# symmetric


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.37, 0.5, 0.8, 1.0])
def test_symmetric_resamples_exactly_int_rate_n_samples(rate):
    # With 10**6 classes a resampled label equals the old one with probability 1e-6 per sample
    # (~1e-3 over all draws), and the seed is fixed, so "changed" counts the resampled samples.
    n = 1000
    labels = np.zeros(n, np.int64)
    noisy = symmetric_noise(labels, rate, 10**6, seed=3)
    assert int(np.sum(noisy != labels)) == int(rate * n)


def test_symmetric_changes_at_most_int_rate_n_and_matches_none_outside():
    labels = balanced(10, 100)
    clean = make_noisy_labels(labels, "none", 0.4, 10, seed=0)
    np.testing.assert_array_equal(clean, labels)
    noisy = make_noisy_labels(labels, "sym", 0.4, 10, seed=0)
    changed = noisy != clean
    assert 0 < changed.sum() <= int(0.4 * 1000)
    # regenerating with the same seed gives exactly the same labels
    np.testing.assert_array_equal(noisy, make_noisy_labels(labels, "sym", 0.4, 10, seed=0))


def test_symmetric_rate_is_r_times_one_minus_one_over_c_for_large_n():
    # N=100000, r=0.5, C=10: the 50000 resampled labels each differ with p=0.9, so the changed
    # count is Binomial(50000, 0.9): mean 45000 (0.45 N), std sqrt(50000*0.9*0.1)=67 (6.7e-4 N).
    # A tolerance of 0.005 is ~7 standard deviations.
    n, c, r = 100_000, 10, 0.5
    labels = np.arange(n, dtype=np.int64) % c
    noisy = symmetric_noise(labels, r, c, seed=1)
    assert int(np.sum(noisy != labels)) <= int(r * n)
    assert realised_noise_rate(noisy, labels) == pytest.approx(r * (1 - 1 / c), abs=0.005)


def test_symmetric_draws_from_all_classes_including_the_true_one():
    # rate 1: every label is redrawn uniformly over all 10 classes, so about 1/10 keep their
    # label (Binomial(1e5, 0.1): std 95 = 9.5e-4 N; tolerance 0.005) and every class gets
    # about N/10 labels (std ~95 each; tolerance 1000 = 10 std).
    n, c = 100_000, 10
    labels = np.zeros(n, np.int64)
    noisy = symmetric_noise(labels, 1.0, c, seed=5)
    assert np.mean(noisy == labels) == pytest.approx(1 / c, abs=0.005)
    counts = np.bincount(noisy, minlength=c)
    assert np.all(np.abs(counts - n / c) < 1000)


def test_rate_zero_and_none_mode_return_equal_copies():
    labels = np.array([3, 1, 2, 0], dtype=np.int32)
    for out in (
        symmetric_noise(labels, 0.0, 4, seed=0),
        asymmetric_noise(labels, 0.0, {0: 1}, seed=0, num_classes=4),
        make_noisy_labels(labels, "none", 0.0, 4, seed=0),
    ):
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, labels)
        assert out is not labels
        assert not np.shares_memory(out, labels)


def test_input_is_not_modified_and_output_is_int64():
    labels = np.arange(200, dtype=np.uint8) % 10
    before = labels.copy()
    for mode, amap in (("sym", None), ("asym", CIFAR10_ASYM_MAP), ("none", None)):
        out = make_noisy_labels(labels, mode, 0.9, 10, seed=2, asym_map=amap)
        assert out.dtype == np.int64 and out.shape == (200,)
    np.testing.assert_array_equal(labels, before)
    assert labels.dtype == np.uint8
    # python lists are accepted too
    assert make_noisy_labels([0, 1, 2], "sym", 0.5, 3, seed=0).dtype == np.int64


def test_same_seed_same_labels_other_seed_different():
    labels = balanced(10, 100)
    for mode, amap in (("sym", None), ("asym", CIFAR10_ASYM_MAP)):
        a = make_noisy_labels(labels, mode, 0.5, 10, seed=123, asym_map=amap)
        b = make_noisy_labels(labels, mode, 0.5, 10, seed=123, asym_map=amap)
        c = make_noisy_labels(labels, mode, 0.5, 10, seed=124, asym_map=amap)
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


# --------------------------------------------------------------------------------------------
# asymmetric


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.29, 0.4, 0.75, 1.0])
def test_asymmetric_with_full_derangement_flips_exactly_int_rate_n(rate):
    # i -> i+1 mod C moves every class, so every chosen sample changes. 0.29*100 is
    # 28.999999999999996 in floating point: like the reference, int() truncates it to 28.
    c, n = 7, 100
    labels = np.arange(n, dtype=np.int64) % c
    mapping = {i: (i + 1) % c for i in range(c)}
    noisy = asymmetric_noise(labels, rate, mapping, seed=9, num_classes=c)
    changed = noisy != labels
    assert int(changed.sum()) == int(rate * n)
    np.testing.assert_array_equal(noisy[changed], (labels[changed] + 1) % c)


def test_cifar10_map_targets():
    assert CIFAR10_ASYM_MAP == {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
    labels = balanced(10, 20)
    noisy = make_noisy_labels(labels, "asym", 1.0, 10, seed=0, asym_map=CIFAR10_ASYM_MAP)
    expected = np.array([0, 1, 0, 5, 7, 3, 6, 7, 8, 1])  # truck->auto, bird->plane, deer->horse, cat<->dog
    np.testing.assert_array_equal(noisy, expected[labels])


def test_cifar10_asym_realised_rate_is_lower_than_r():
    # Half of the 10 balanced classes are in the map, so about r/2 of the samples change. The
    # number of moving classes among the 4000 chosen samples is hypergeometric with mean 2000
    # and std ~24.5 (0.0025 N); tolerance 0.015 is ~6 std.
    labels = balanced(10, 1000)
    noisy = make_noisy_labels(labels, "asym", 0.4, 10, seed=4, asym_map=CIFAR10_ASYM_MAP)
    rate = realised_noise_rate(noisy, labels)
    assert rate == pytest.approx(0.2, abs=0.015)
    # unmapped classes never change
    for cls in (0, 1, 6, 7, 8):
        np.testing.assert_array_equal(noisy[labels == cls], cls)


def test_sym_and_asym_choose_the_same_samples_for_one_seed():
    labels = np.arange(500, dtype=np.int64) % 5
    derange = {i: (i + 1) % 5 for i in range(5)}
    asym = asymmetric_noise(labels, 0.3, derange, seed=11, num_classes=5)
    sym = symmetric_noise(labels, 0.3, 5, seed=11)
    chosen = asym != labels
    assert chosen.sum() == 150
    np.testing.assert_array_equal(sym[~chosen], labels[~chosen])


def test_asym_without_map_asks_for_one():
    with pytest.raises(DmkerasError, match="map"):
        make_noisy_labels([0, 1], "asym", 0.5, 2, seed=0)


def test_asym_map_validation():
    with pytest.raises(DmkerasError, match="outside"):
        asymmetric_noise([0, 1], 0.5, {0: 2}, seed=0, num_classes=2)
    with pytest.raises(DmkerasError, match="outside"):
        asymmetric_noise([0, 1], 0.5, {-1: 0}, seed=0, num_classes=2)
    with pytest.raises(DmkerasError, match="ints"):
        asymmetric_noise([0, 1], 0.5, {0: "1"}, seed=0, num_classes=2)
    with pytest.raises(DmkerasError, match="dict"):
        asymmetric_noise([0, 1], 0.5, [(0, 1)], seed=0, num_classes=2)


# --------------------------------------------------------------------------------------------
# CIFAR-100 map


def test_cifar100_coarse_table():
    coarse = np.array(CIFAR100_COARSE_LABELS)
    assert coarse.shape == (100,)
    np.testing.assert_array_equal(np.bincount(coarse), np.full(20, 5))
    # aquatic mammals (0): beaver, dolphin, otter, seal, whale; fruit and vegetables (4): apple,
    # mushroom, orange, pear, sweet_pepper; vehicles 2 (19): lawn_mower, rocket, streetcar, tank, tractor
    assert np.flatnonzero(coarse == 0).tolist() == [4, 30, 55, 72, 95]
    assert np.flatnonzero(coarse == 4).tolist() == [0, 51, 53, 57, 83]
    assert np.flatnonzero(coarse == 19).tolist() == [41, 69, 81, 85, 89]


def test_cifar100_map_is_cyclic_permutation_within_superclasses():
    m = cifar100_asym_map()
    coarse = CIFAR100_COARSE_LABELS
    assert sorted(m) == list(range(100))
    assert sorted(m.values()) == list(range(100))  # a permutation
    for src, dst in m.items():
        assert src != dst  # every class moves
        assert coarse[src] == coarse[dst]
    # orbit of each class = its super-class (cycle of length 5)
    for start in range(100):
        orbit, c = [start], m[start]
        while c != start:
            orbit.append(c)
            c = m[c]
        assert sorted(orbit) == [i for i in range(100) if coarse[i] == coarse[start]]
    # next class by id within the super-class, wrapping around
    assert [m[i] for i in (4, 30, 55, 72, 95)] == [30, 55, 72, 95, 4]
    labels = np.arange(100)
    noisy = make_noisy_labels(labels, "asym", 1.0, 100, seed=0, asym_map=m)
    assert realised_noise_rate(noisy, labels) == 1.0


# --------------------------------------------------------------------------------------------
# parse_asym_map


def test_parse_asym_map_good():
    assert parse_asym_map("3:5,5:3,7:1", 10) == {3: 5, 5: 3, 7: 1}
    assert parse_asym_map(" 9 : 1 , 2:0 ", 10) == {9: 1, 2: 0}
    assert parse_asym_map("0:9", 10) == {0: 9}


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        ("3", "bad asymmetric"),
        ("3:5:7", "bad asymmetric"),
        ("a:b", "bad asymmetric"),
        ("3:5,", "bad asymmetric"),
        ("3-5", "bad asymmetric"),
        ("3:10", "outside"),
        ("-1:2", "outside"),
        ("3:5,3:4", "twice"),
    ],
)
def test_parse_asym_map_bad(text, match):
    with pytest.raises(DmkerasError, match=match):
        parse_asym_map(text, 10)


# --------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize("rate", [-0.1, 1.1, float("nan"), "0.5", True])
def test_bad_rate(rate):
    with pytest.raises(DmkerasError, match="rate"):
        make_noisy_labels([0, 1], "sym", rate, 2, seed=0)


@pytest.mark.parametrize(
    "labels, match",
    [
        ([0, 1, 2], "must lie in \\[0, 2\\), got 2 \\(1 sample\\)"),
        ([0, -1], "must lie in \\[0, 2\\), got -1 \\(1 sample\\)"),
        ([[0, 1]], "1-D"),
        ([0.5, 1.0], "integer class indices \\(got non-integer values\\)"),
    ],
)
def test_bad_labels(labels, match):
    for mode, amap in (("sym", None), ("asym", {0: 1}), ("none", None)):
        with pytest.raises(DmkerasError, match=match):
            make_noisy_labels(labels, mode, 0.5, 2, seed=0, asym_map=amap)


def test_bad_mode_and_num_classes():
    with pytest.raises(DmkerasError, match="noise mode"):
        make_noisy_labels([0], "pair", 0.5, 2, seed=0)
    with pytest.raises(DmkerasError, match="num_classes"):
        make_noisy_labels([0], "sym", 0.5, 0, seed=0)


def test_realised_noise_rate():
    assert realised_noise_rate([0, 1, 2, 3], [0, 1, 0, 0]) == 0.5
    with pytest.raises(DmkerasError, match="length"):
        realised_noise_rate([0, 1], [0])
    with pytest.raises(DmkerasError, match="empty"):
        realised_noise_rate([], [])


# --------------------------------------------------------------------------------------------
# noise files


def test_default_noise_file_name():
    assert default_noise_file_name(0.5, "sym") == "0.5_sym.json"
    assert default_noise_file_name(0.4, "asym") == "0.4_asym.json"
    assert default_noise_file_name(0.0, "sym") == "0.0_sym.json"  # reference uses %.1f
    assert default_noise_file_name(1, "sym") == "1.0_sym.json"
    assert default_noise_file_name(0.25, "sym") == "0.25_sym.json"  # not "0.2"
    with pytest.raises(DmkerasError):
        default_noise_file_name(2.0, "sym")
    with pytest.raises(DmkerasError):
        default_noise_file_name(0.5, "pairflip")


def test_json_round_trip(tmp_path):
    labels = make_noisy_labels(balanced(10, 30), "sym", 0.5, 10, seed=0)
    path = tmp_path / "a" / "b" / "0.5_sym.json"  # parent dirs are created
    save_noise_file(path, labels)
    with open(path) as f:
        raw = json.load(f)
    assert isinstance(raw, list) and all(type(v) is int for v in raw)  # reference format
    assert raw == labels.tolist()
    loaded = load_noise_file(path, 300, 10)
    assert loaded.dtype == np.int64
    np.testing.assert_array_equal(loaded, labels)
    assert os.listdir(path.parent) == ["0.5_sym.json"]  # no temp file left behind


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "n.json"
    save_noise_file(path, np.array([1, 2, 3]))
    save_noise_file(str(path), [4, 5])
    assert json.loads(path.read_text()) == [4, 5]
    assert os.listdir(tmp_path) == ["n.json"]
    with pytest.raises(DmkerasError, match="integers"):
        save_noise_file(path, np.array([0.5]))
    assert json.loads(path.read_text()) == [4, 5]


def test_reads_a_reference_written_file(tmp_path):
    path = tmp_path / "0.8_sym.json"
    with open(path, "w") as f:
        json.dump([0, 9, 3, 3, 7], f)
    np.testing.assert_array_equal(load_noise_file(path, 5, 10), [0, 9, 3, 3, 7])


@pytest.mark.parametrize(
    "content, match",
    [
        ("[0, 1, 2", "not valid JSON"),
        ("", "not valid JSON"),
        ('{"labels": [0, 1, 2]}', "list of ints.*dict"),
        ('"012"', "list of ints.*str"),
        ("[0, 1.0, 2]", "item 1"),
        ('[0, "1", 2]', "item 1"),
        ("[0, true, 2]", "item 1"),
        ("[0, null, 2]", "item 1"),
        ("[0, 1]", "has 2 labels but the training set has 3"),
        ("[0, 1, 2, 1]", "has 4 labels but the training set has 3"),
        ("[0, 1, 10]", "must lie in \\[0, 10\\), got 10 \\(1 sample\\)"),
        ("[0, -1, 2]", "must lie in \\[0, 10\\), got -1"),
    ],
)
def test_load_noise_file_errors(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DmkerasError, match=match):
        load_noise_file(path, 3, 10)


def test_load_noise_file_missing_and_not_utf8(tmp_path):
    with pytest.raises(DmkerasError, match="does not exist"):
        load_noise_file(tmp_path / "nope.json", 3, 10)
    path = tmp_path / "bin.json"
    path.write_bytes(b"\xff\xfe\x00[")
    with pytest.raises(DmkerasError, match="JSON"):
        load_noise_file(path, 3, 10)


def test_file_reuse(tmp_path):
    labels = balanced(10, 50)
    path = tmp_path / "noise" / default_noise_file_name(0.5, "sym")
    first, reused = noisy_labels_from_file_or_new(path, labels, "sym", 0.5, 10, seed=1, asym_map=None)
    assert reused is False and path.exists()
    np.testing.assert_array_equal(first, make_noisy_labels(labels, "sym", 0.5, 10, seed=1))
    # another seed (or even mode) reuses the file and returns the identical labels
    second, reused = noisy_labels_from_file_or_new(path, labels, "sym", 0.5, 10, seed=999, asym_map=None)
    assert reused is True
    np.testing.assert_array_equal(second, first)
    third, reused = noisy_labels_from_file_or_new(path, labels, "asym", 0.5, 10, seed=2, asym_map=CIFAR10_ASYM_MAP)
    assert reused is True
    np.testing.assert_array_equal(third, first)
    # a file of the wrong length is an error, not regenerated
    with pytest.raises(DmkerasError, match="has 500 labels but the training set has 499"):
        noisy_labels_from_file_or_new(path, labels[:-1], "sym", 0.5, 10, seed=1)


def test_file_or_new_without_path_and_asym(tmp_path):
    labels = balanced(10, 10)
    noisy, reused = noisy_labels_from_file_or_new(None, labels, "sym", 0.5, 10, seed=0)
    assert reused is False
    np.testing.assert_array_equal(noisy, make_noisy_labels(labels, "sym", 0.5, 10, seed=0))
    with pytest.raises(DmkerasError, match="map"):
        noisy_labels_from_file_or_new(tmp_path / "x.json", labels, "asym", 0.5, 10, seed=0, asym_map=None)
    assert not (tmp_path / "x.json").exists()


def test_public_names():
    for name in noise.__all__:
        assert hasattr(noise, name)
