"""The one inference path: every batch size gives what the model itself gives,
concurrent callers are batched safely, and loading errors reach the caller."""
import threading

import numpy as np
import pytest

from webapp.core import networks
from webapp.core.inference import Predictor, compile_forward


@pytest.fixture(scope="module")
def cnn():
    return networks.build("cnn")


@pytest.mark.parametrize("count", [1, 2, 3, 7, 70])
def test_fast_forward_matches_the_model_for_any_batch(cnn, count):
    images = np.random.default_rng(count).random((count, 28, 28), dtype=np.float32)
    x = networks.shape_inputs(cnn, images)
    expected = np.asarray(cnn(x, training=False))
    assert np.allclose(compile_forward(cnn)(x), expected, atol=1e-5)


def test_concurrent_callers_each_get_their_own_answer(cnn):
    predictor = Predictor(lambda model_id: cnn)
    images = np.random.default_rng(0).random((24, 28, 28), dtype=np.float32)
    expected = np.asarray(cnn(networks.shape_inputs(cnn, images), training=False))
    answers = [None] * len(images)

    def ask(i):
        answers[i] = predictor.probabilities("cnn", images[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.allclose(np.stack(answers), expected, atol=1e-5)


def test_a_model_that_fails_to_load_raises_for_the_caller():
    def broken(model_id):
        raise OSError("no such file")

    with pytest.raises(OSError, match="no such file"):
        Predictor(broken).probabilities("missing", np.zeros((28, 28), np.float32))
