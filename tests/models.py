"""Small models of every kind the callback must handle."""

from __future__ import annotations

import keras
import numpy as np

L = keras.layers


def data(n: int = 64, features: int = 8, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0.5).astype("int64")
    return x, np.minimum(y, classes - 1)


def sequential(features: int = 8) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((features,)),
            L.Dense(16, use_bias=False),
            L.BatchNormalization(),
            L.Activation("relu"),
            L.Dropout(0.2),
            L.Dense(3, activation="softmax"),
        ],
        name="seq",
    )


def functional(features: int = 8) -> keras.Model:
    inputs = keras.Input((features,), name="features")
    h = L.Dense(16, activation="tanh", name="hidden")(inputs)
    h = L.BatchNormalization(name="bn")(h)
    outputs = L.Dense(3, activation="softmax", name="probs")(h)
    return keras.Model(inputs, outputs, name="func")


def nested(features: int = 8) -> keras.Model:
    inner = keras.Sequential(
        [
            keras.Input((features,)),
            L.Dense(16, activation="relu"),
            L.BatchNormalization(),
        ],
        name="encoder",
    )
    inputs = keras.Input((features,))
    outputs = L.Dense(3, activation="softmax", name="head")(inner(inputs))
    return keras.Model(inputs, outputs, name="outer")


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="sub")
        self.dense = L.Dense(16, activation="relu")
        self.norm = L.BatchNormalization()
        self.out = L.Dense(3, activation="softmax")

    def call(self, inputs, training=None):
        return self.out(self.norm(self.dense(inputs), training=training))


def subclassed(features: int = 8) -> keras.Model:
    return Subclassed()


BUILDERS = {
    "sequential": sequential,
    "functional": functional,
    "nested": nested,
    "subclassed": subclassed,
}


def compiled(builder, seed: int = 0, optimizer="adam") -> keras.Model:
    keras.utils.set_random_seed(seed)
    model = builder()
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model
