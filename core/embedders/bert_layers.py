"""Keras layers of the BERT port (`core.embedders.minilm`), registered for safe-mode loading.

Imported only by the functions that build or load such a model: importing it loads Keras.
"""

from __future__ import annotations

import keras
from keras import ops

from core.embedders.bert_shape import BertShape


@keras.saving.register_keras_serializable(package="samesame_minilm")
class BertEmbeddings(keras.layers.Layer):
    """Word + position + token-type embeddings of the packed input, LayerNorm, dropout."""

    def __init__(self, shape: dict, dropout: float = 0.1, **kwargs):
        super().__init__(**kwargs)
        self.shape_config = dict(shape)
        self.dropout_rate = dropout
        sizes = BertShape(**shape)
        self.word = self.add_weight((sizes.vocab, sizes.hidden), name="word_embeddings")
        self.position = self.add_weight((sizes.positions, sizes.hidden), name="position_embeddings")
        self.token_type = self.add_weight(
            (sizes.token_types, sizes.hidden), name="token_type_embeddings"
        )
        self.norm = keras.layers.LayerNormalization(epsilon=sizes.epsilon, name="norm")
        self.norm.build((None, None, sizes.hidden))
        self.drop = keras.layers.Dropout(dropout)

    def call(self, packed, training=None):
        ids = ops.cast(packed[:, 0, :], "int32")
        types = ops.cast(packed[:, 1, :], "int32")
        positions = ops.arange(ops.shape(packed)[2], dtype="int32")
        x = ops.take(self.word, ids, axis=0) + ops.take(self.token_type, types, axis=0)
        x = x + ops.expand_dims(ops.take(self.position, positions, axis=0), 0)
        return self.drop(self.norm(x), training=training)

    def get_config(self):
        return {
            **super().get_config(),
            "shape": self.shape_config,
            "dropout": self.dropout_rate,
        }


@keras.saving.register_keras_serializable(package="samesame_minilm")
class KeyMask(keras.layers.Layer):
    """The packed input's attention mask as MultiHeadAttention's (n, 1, length) booleans."""

    def call(self, packed):
        return ops.expand_dims(packed[:, 2, :] > 0.5, 1)


@keras.saving.register_keras_serializable(package="samesame_minilm")
class MaskedMean(keras.layers.Layer):
    """The mean of the hidden states over the tokens the mask keeps."""

    def call(self, hidden, packed):
        mask = ops.expand_dims(packed[:, 2, :], -1)
        return ops.sum(hidden * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1e-9)


@keras.saving.register_keras_serializable(package="samesame_minilm")
class FirstToken(keras.layers.Layer):
    """The hidden state of [CLS]."""

    def call(self, hidden):
        return hidden[:, 0, :]
