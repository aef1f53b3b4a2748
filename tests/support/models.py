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


# --- More kinds for the model and training matrix (tests/test_matrix.py) -----
def multi_input(features: int = 8) -> keras.Model:
    left = keras.Input((features,), name="left")
    right = keras.Input((4,), name="right")
    h = L.Concatenate(name="concat")([L.Dense(8, name="left_dense")(left), right])
    h = L.BatchNormalization(name="bn")(h)
    outputs = L.Dense(3, activation="softmax", name="probs")(h)
    return keras.Model([left, right], outputs, name="two_in")


def multi_output(features: int = 8) -> keras.Model:
    inputs = keras.Input((features,), name="features")
    h = L.Dense(16, activation="relu", name="trunk")(inputs)
    h = L.BatchNormalization(name="bn")(h)
    probs = L.Dense(3, activation="softmax", name="probs")(h)
    value = L.Dense(1, name="value")(h)
    return keras.Model(inputs, [probs, value], name="two_out")


def recurrent(steps: int = 4, features: int = 3) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((steps, features)),
            L.SimpleRNN(4, return_sequences=True, name="simple_rnn"),
            L.BatchNormalization(name="bn"),
            L.LSTM(4, return_sequences=True, name="lstm"),
            L.GRU(4, name="gru"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="recurrent",
    )


def conv1d(steps: int = 12, features: int = 3) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((steps, features)),
            L.Conv1D(4, 3, use_bias=False, name="conv"),
            L.BatchNormalization(name="bn"),
            L.ReLU(name="relu"),
            L.GlobalAveragePooling1D(name="pool"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="conv1d",
    )


def conv2d(size: int = 8, channels: int = 3) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((size, size, channels)),
            L.Conv2D(4, 3, use_bias=False, name="conv"),
            L.BatchNormalization(name="bn"),
            L.ReLU(name="relu"),
            L.MaxPooling2D(name="pool"),
            L.Flatten(name="flatten"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="conv2d",
    )


def embedding(vocabulary: int = 20, length: int = 6) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((length,), dtype="int32"),
            L.Embedding(vocabulary, 8, name="embed"),
            L.GlobalAveragePooling1D(name="pool"),
            L.BatchNormalization(name="bn"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="embedding",
    )


def no_batch_norm(features: int = 8) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((features,)),
            L.Dense(16, activation="relu", name="hidden"),
            L.Dense(3, activation="softmax", name="probs"),
        ],
        name="plain",
    )


def frozen(features: int = 8) -> keras.Model:
    model = functional(features)
    model.trainable = False
    return model


class CustomTrainStep(keras.Model):
    """A Functional model with its own `train_step` (compiled loss optional)."""

    def train_step(self, data):
        import tensorflow as tf

        x, y = data[0], data[1]
        with tf.GradientTape() as tape:
            y_pred = self(x, training=True)
            if self._compile_loss is None:  # compiled without a loss
                loss = keras.losses.sparse_categorical_crossentropy(y, y_pred)
                loss = keras.ops.mean(loss)
            else:
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return {"loss": loss}


def custom_train_step(features: int = 8) -> keras.Model:
    inputs = keras.Input((features,), name="features")
    h = L.Dense(16, activation="tanh", name="hidden")(inputs)
    h = L.BatchNormalization(name="bn")(h)
    outputs = L.Dense(3, activation="softmax", name="probs")(h)
    return CustomTrainStep(inputs, outputs, name="custom_step")
