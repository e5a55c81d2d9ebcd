"""The tensor maths of DivideMix (Li, Socher & Hoi, ICLR 2020, arXiv:2002.07394).

Small pure functions named after the paper (sections cited) and its reference code. Losses come
per row (not averaged) so that the train steps can normalise them by the *global* batch size
under a `tf.distribute` strategy.
"""

import numpy as np
import tensorflow as tf


def sharpen(probs, temperature):
    """Temperature sharpening (Sec. 3.2): p^(1/T) / sum_c p_c^(1/T), row-wise."""
    powered = tf.pow(probs, 1.0 / temperature)
    return powered / tf.reduce_sum(powered, axis=-1, keepdims=True)


def co_refine(labels_onehot, clean_prob, probs_view1, probs_view2, temperature):
    """Label co-refinement (Sec. 3.2) for labeled samples.

    The given label is blended with the *training* net's own prediction averaged over two views,
    weighted by the clean probability `w` that the *other* net's GMM gave the sample, then sharpened.
    """
    w = tf.reshape(tf.cast(clean_prob, probs_view1.dtype), [-1, 1])
    predicted = (probs_view1 + probs_view2) / 2.0
    refined = w * labels_onehot + (1.0 - w) * predicted
    return sharpen(refined, temperature)


def co_guess(probs_list, temperature):
    """Label co-guessing (Sec. 3.2): average both nets' predictions on both views, then sharpen."""
    return sharpen(tf.add_n(list(probs_list)) / float(len(probs_list)), temperature)


def sample_mix_lambda(rng: np.random.Generator, alpha: float) -> float:
    """MixMatch's mixing weight: l ~ Beta(alpha, alpha), l = max(l, 1 - l).

    Drawn on the host: `tf.random.gamma` has no XLA kernel and one draw per step is all we need.
    """
    lam = float(rng.beta(alpha, alpha))
    return max(lam, 1.0 - lam)


def mixup(inputs, targets, mix_lambda, permutation, rows=None):
    """MixMatch mixing (Sec. 3.2): each row mixed with the row `permutation` points at.

    `rows`: mix only the first `rows` rows, their partners still drawn from every row (the
    reference's Clothing1M / WebVision step, which trains on the first 2B of the 4B mixed rows).
    """
    if rows is not None:
        own_inputs, own_targets, permutation = inputs[:rows], targets[:rows], permutation[:rows]
    else:
        own_inputs, own_targets = inputs, targets
    lam_x = tf.cast(mix_lambda, inputs.dtype)
    lam_t = tf.cast(mix_lambda, targets.dtype)
    mixed_inputs = lam_x * own_inputs + (1.0 - lam_x) * tf.gather(inputs, permutation)
    mixed_targets = lam_t * own_targets + (1.0 - lam_t) * tf.gather(targets, permutation)
    return mixed_inputs, mixed_targets


def random_permutation(n, seed):
    """A permutation of range(n) from a stateless seed (same seed, same permutation).

    The same permutation with and without XLA: the raw Philox bits agree between TensorFlow's
    kernel and XLA's, but their conversion to floats does not, so the keys are the 23 bits that
    TensorFlow's float conversion keeps (hence the same order as sorting
    `stateless_uniform([n], seed)`, ties by index), sorted stably.
    """
    bits = tf.random.stateless_uniform([n], seed=seed, minval=None, maxval=None, dtype=tf.uint32, alg="philox")
    keys = tf.cast(tf.bitwise.bitwise_and(bits, tf.constant(0x7FFFFF, tf.uint32)), tf.int32)
    return tf.argsort(keys, stable=True)


def soft_cross_entropy(logits, targets):
    """Per-row cross-entropy against soft targets: -sum_c t_c log softmax(z)_c (L_x)."""
    return -tf.reduce_sum(targets * tf.nn.log_softmax(logits, axis=-1), axis=-1)


def squared_error(logits, targets):
    """Per-row sum over classes of (softmax(z) - t)^2 (L_u).

    The reference averages over rows *and* classes, so the caller divides by rows * classes.
    """
    return tf.reduce_sum(tf.square(tf.nn.softmax(logits, axis=-1) - targets), axis=-1)


def linear_rampup(current_epoch, warm_up, lambda_u, rampup_length=16.0):
    """lambda_u ramped linearly over `rampup_length` epochs after warm-up (reference `linear_rampup`).

    `current_epoch` is fractional: epoch + batch_index / num_iter.
    """
    progress = np.clip((current_epoch - warm_up) / rampup_length, 0.0, 1.0)
    return float(lambda_u) * float(progress)


def negative_entropy(logits):
    """Per-row sum_c p_c log p_c: the confidence penalty (Sec. 3.1) used in warm-up under asymmetric
    noise (Pereyra et al. 2017); adding its mean to CE pushes predictions away from over-confidence."""
    log_probs = tf.nn.log_softmax(logits, axis=-1)
    return tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=-1)


def uniform_prior_penalty(mean_probs, present=None):
    """The regulariser L_reg (Sec. 3.2): sum_c pi_c log(pi_c / mean_probs_c) with a uniform prior pi_c = 1/C.

    `mean_probs` is the softmax averaged over the (global) mixed batch. `present` (a 0/1 vector
    over the C classes, optional): the prior is uniform over the present classes only (1/C' on
    them, 0 elsewhere), so a class without any training sample gets no probability pushed onto it.
    """
    if present is None:
        present = tf.ones_like(mean_probs)
    present = tf.cast(present, mean_probs.dtype)
    prior = present / tf.reduce_sum(present)
    # an absent class adds 0 (0 log 0); ones there keep both branches' gradients finite
    on = prior > 0
    safe_prior, safe_probs = tf.where(on, prior, 1.0), tf.where(on, mean_probs, 1.0)
    return tf.reduce_sum(tf.where(on, prior * (tf.math.log(safe_prior) - tf.math.log(safe_probs)), 0.0))


def contrastive_loss(projections1, projections2, temperature):
    """UNICON's unsupervised contrastive term L_C: SimCLR's NT-Xent over two views (issue 12).

    Row i of `projections1` and row i of `projections2` are two views of one sample. Each of the
    2B rows, L2-normalised, is an anchor whose positive is the other view of its sample and whose
    negatives are the other 2B - 2 rows:
        l_i = -log( exp(s_i,pos / t) / sum_{a != i} exp(s_i,a / t) ),   s = cosine similarity.
    Returns the mean over the 2B anchors (UNICON's SupConLoss with temperature = base
    temperature, so no extra t / t_base factor).
    """
    z = tf.math.l2_normalize(tf.concat([projections1, projections2], axis=0), axis=-1)
    rows = tf.shape(z)[0]
    half = rows // 2
    logits = tf.matmul(z, z, transpose_b=True) / temperature
    not_self = 1.0 - tf.eye(rows, dtype=logits.dtype)
    # the anchor itself leaves the denominator: a large negative logit (not -inf, whose 0 * inf is NaN)
    logits = logits * not_self - 1e9 * (1.0 - not_self)
    positives = tf.concat([tf.range(half, rows), tf.range(0, half)], axis=0)
    per_anchor = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=positives, logits=logits)
    return tf.reduce_mean(per_anchor)
