"""The trainer hands freed heap pages back to the OS at the end of every epoch (glibc's
malloc_trim), after the collection that frees the epoch's pipelines and before `rss_mb` is read."""

import numpy as np
import pytest
import tensorflow as tf

from dmkeras import metrics, trainer
from dmkeras.codivide import CoDivide
from tests.helpers import dividemix_model, image_bank, random_labeled_images

glibc_only = pytest.mark.skipif(trainer._MALLOC_TRIM is None, reason="no glibc malloc_trim here")


@glibc_only
def test_trim_returns_the_freed_pages_that_free_keeps():
    """200 MiB in 100 KiB blocks (below glibc's mmap threshold, so from the heap), every tenth
    kept: free() gives back almost nothing, the trim gives back the pages between the kept ones."""
    blocks = [bytearray(100 * 1024) for _ in range(2000)]
    for b in blocks:
        b[::4096] = b"\x01" * len(b[::4096])  # touch every page, so it is resident
    kept = blocks[::10]
    del blocks
    before = metrics.resident_memory_mb()
    assert trainer.return_freed_heap_to_os()
    after = metrics.resident_memory_mb()
    assert before - after > 100, (before, after)  # 180 MiB freed; at least 100 of it returned
    assert len(kept) == 200


def test_every_epoch_trims_before_resident_memory_is_read(monkeypatch):
    calls, read_after = [], []
    monkeypatch.setattr(trainer, "_MALLOC_TRIM", lambda pad: calls.append(pad))
    real_rss = metrics.resident_memory_mb
    monkeypatch.setattr(metrics, "resident_memory_mb", lambda: read_after.append(len(calls)) or real_rss())
    model = dividemix_model(3, seed=0, net_args=dict(width=8))
    images, labels = random_labeled_images(np.random.default_rng(0), 24, 3)
    bank = image_bank(images)
    test_data = tf.data.Dataset.from_tensor_slices((bank.load(tf.range(24)), labels)).batch(12)
    history = trainer.train(model, CoDivide(bank, labels, warm_up=1, batch_size=8), epochs=3, test_data=test_data,
                            lambda_u=25.0, verbose=0)
    assert calls == [0, 0, 0]  # once per epoch, keeping no padding at the top of the heap
    assert read_after == [1, 2, 3]
    assert all(np.isfinite(h["rss_mb"]) for h in history)
