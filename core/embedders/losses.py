"""The metric losses the Siamese network trains with: semi-hard triplet (the original
write-up's), boundary margin and ArcFace. TensorFlow is imported inside each, as they run only
when training."""

from __future__ import annotations


def semi_hard_triplet_loss(labels, embeddings, margin: float):
    """Triplet loss with semi-hard negatives mined in the batch (FaceNet, Schroff et al. 2015).

    For each anchor–positive pair the negative is the closest one still farther than the
    positive; where no such negative exists, the farthest negative (an easy one) is used, so the
    early, collapsed embedding still gets a gradient pushing groups apart.
    """
    import tensorflow as tf

    labels = tf.reshape(labels, [-1])
    squared = tf.reduce_sum(tf.square(embeddings), axis=1)
    dist2 = (
        squared[:, None]
        - 2.0 * tf.matmul(embeddings, embeddings, transpose_b=True)
        + squared[None, :]
    )
    dist = tf.sqrt(tf.maximum(dist2, 1e-12))
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    positive = tf.logical_and(same, tf.logical_not(eye))
    negative = tf.logical_not(same)

    d_ap = dist[:, :, None]  # (anchor, positive, 1)
    d_an = dist[:, None, :]  # (anchor, 1, negative)
    semi_mask = tf.logical_and(negative[:, None, :], d_an > d_ap)
    big = tf.reduce_max(dist) + 1.0
    semi = tf.reduce_min(
        tf.where(semi_mask, tf.broadcast_to(d_an, tf.shape(semi_mask)), big), axis=2
    )
    has_semi = tf.reduce_any(semi_mask, axis=2)
    easiest = tf.reduce_max(tf.where(negative, dist, 0.0), axis=1)[:, None]
    chosen = tf.where(has_semi, semi, tf.broadcast_to(easiest, tf.shape(semi)))
    losses = tf.maximum(dist - chosen + margin, 0.0)
    weights = tf.cast(positive, tf.float32)
    return tf.reduce_sum(losses * weights) / tf.maximum(tf.reduce_sum(weights), 1.0)


def boundary_margin_loss(labels, embeddings, boundary: float, margin: float):
    """Margin-based loss (Wu et al. 2017, "Sampling Matters"): same-group pairs are pulled
    inside ``boundary - margin/2``, other pairs pushed beyond ``boundary + margin/2``.

    Anchoring the loss at the distance the ensemble rule uses (0.95) makes that fixed threshold
    meaningful for the trained model; only pairs that violate their side count (hard mining).
    """
    import tensorflow as tf

    labels = tf.reshape(labels, [-1])
    gram = tf.matmul(embeddings, embeddings, transpose_b=True)
    dist = tf.sqrt(tf.maximum(2.0 - 2.0 * gram, 1e-12))
    same = tf.equal(labels[:, None], labels[None, :])
    off_diagonal = tf.logical_not(tf.eye(tf.shape(labels)[0], dtype=tf.bool))
    positive = tf.cast(tf.logical_and(same, off_diagonal), tf.float32)
    negative = tf.cast(tf.logical_not(same), tf.float32)
    pull = tf.nn.relu(dist - (boundary - margin / 2.0)) * positive
    push = tf.nn.relu((boundary + margin / 2.0) - dist) * negative
    active_pos = tf.reduce_sum(tf.cast(pull > 0, tf.float32))
    active_neg = tf.reduce_sum(tf.cast(push > 0, tf.float32))
    return tf.reduce_sum(pull) / tf.maximum(active_pos, 1.0) + tf.reduce_sum(push) / tf.maximum(
        active_neg, 1.0
    )


def arcface_loss(labels, embeddings, class_kernel, scale: float, margin: float):
    """Additive angular margin softmax (ArcFace, Deng et al. 2019) over the training groups.

    Embeddings are unit length; the class centres are the columns of ``class_kernel``, normalised
    here. The target class's angle is widened by ``margin`` so groups must sit tighter than the
    plain softmax needs; the class head is thrown away after training.
    """
    import math

    import tensorflow as tf

    centres = tf.math.l2_normalize(class_kernel, axis=0)
    cosine = tf.clip_by_value(tf.matmul(embeddings, centres), -1.0 + 1e-7, 1.0 - 1e-7)
    sine = tf.sqrt(1.0 - tf.square(cosine))
    with_margin = cosine * math.cos(margin) - sine * math.sin(margin)
    # Past pi - margin the angle would wrap around; fall back to a linear penalty (as ArcFace).
    with_margin = tf.where(
        cosine > math.cos(math.pi - margin),
        with_margin,
        cosine - math.sin(math.pi - margin) * margin,
    )
    one_hot = tf.one_hot(tf.reshape(labels, [-1]), tf.shape(centres)[1])
    logits = scale * tf.where(one_hot > 0, with_margin, cosine)
    return tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(one_hot, logits))
