"""The one inference path: worker processes give what the model and the recipe give in-process, for any
batch and any number of concurrent callers; bad, blank and broken inputs reach the caller as the same errors;
a worker that dies or hangs is replaced."""
import threading
import time

import numpy as np
import pytest

from bench.strokes import canvas_png, drawn_digit
from tests.test_preprocess import drawing, encode
from webapp.config import Settings
from webapp.core import networks
from webapp.core.forward import RUNTIMES, compile_forward, litert_forward
from webapp.core.inference import InferenceWorkers
from webapp.core.models import LoadError
from webapp.core.modelstore import ModelStore
from webapp.core.preprocess import BadImage, BlankImage, preprocess


@pytest.fixture(scope="module")
def cnn():
    return networks.build("cnn")


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("count", [1, 2, 3, 7, 70])
def test_fast_forward_matches_the_model_for_any_batch(cnn, count, runtime):
    images = np.random.default_rng(count).random((count, 28, 28), dtype=np.float32)
    x = networks.shape_inputs(cnn, images)
    expected = np.asarray(cnn(x, training=False))
    assert np.allclose(compile_forward(cnn, runtime)(x), expected, atol=1e-5)


@pytest.mark.parametrize("network", ["mlp", "mlp2", "cnn"])
def test_litert_runs_every_recipe_as_keras_does(network):
    """The fast runtime itself, not its fallback: it must load here (ai-edge-litert is a requirement)."""
    model = networks.build(network)
    images = np.random.default_rng(1).random((5, 28, 28), dtype=np.float32)
    expected = np.asarray(model(networks.shape_inputs(model, images), training=False))
    assert np.allclose(litert_forward(model)(images), expected, atol=1e-5)


def test_litert_runs_a_model_with_more_outputs():
    import keras

    letters = keras.Sequential([keras.Input((28, 28)), keras.layers.Flatten(), keras.layers.Dense(26, "softmax")])
    images = np.random.default_rng(2).random((3, 28, 28), dtype=np.float32)
    assert litert_forward(letters)(images).shape == (3, 26)


def test_an_unknown_runtime_stops_the_start(tmp_path):
    with pytest.raises(ValueError, match="NEURONLAB_INFERENCE_RUNTIME is 'tpu'"):
        InferenceWorkers(Settings(home=tmp_path, inference_runtime="tpu"), processes=1)


@pytest.fixture(scope="module")
def home(tmp_path_factory, cnn):
    home = tmp_path_factory.mktemp("inference")
    ModelStore(home / "models").save(cnn, {"network": "cnn"}, "cnn")
    (home / "models" / "broken.keras").write_bytes(b"PK\x03\x04 not really a zip")
    (home / "models" / "broken.json").write_text('{"network": "cnn"}')
    return home


@pytest.fixture(scope="module")
def workers(home):
    workers = InferenceWorkers(Settings(home=home, models=home / "shipped", max_image_pixels=1_000_000),
                               processes=2)
    yield workers
    workers.close()


def test_the_recipe_in_a_worker_is_the_recipe_in_process(workers):
    png = encode(drawing((30, 50, 180), mode="RGB", ink=(20, 20, 120), paper=(250, 250, 250)))
    assert np.array_equal(workers.preprocess(png), preprocess(png))


def test_bad_blank_and_too_large_images_raise_as_in_process(workers):
    with pytest.raises(BadImage, match="not a PNG"):
        workers.preprocess(b"not an image")
    with pytest.raises(BlankImage, match="nothing drawn"):
        workers.preprocess(encode(drawing((0, 0, 0), width=0, ink=255)))
    with pytest.raises(BadImage, match="limit is 1,000,000"):
        workers.preprocess(encode(drawing((40, 40, 200), size=(1200, 1000))))


def test_concurrent_callers_each_get_their_own_answer(workers, cnn):
    images = np.random.default_rng(0).random((24, 28, 28), dtype=np.float32)
    expected = np.asarray(cnn(networks.shape_inputs(cnn, images), training=False))
    answers = [None] * len(images)

    def ask(i):
        answers[i] = workers.probabilities("cnn", images[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(images))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.allclose(np.stack(answers), expected, atol=1e-5)


def test_models_that_cannot_be_loaded_raise_load_error_for_the_caller(workers):
    with pytest.raises(LoadError):
        workers.probabilities("broken", np.zeros((28, 28), np.float32))
    with pytest.raises(LoadError, match="no model called 'missing'"):
        workers.probabilities("missing", np.zeros((28, 28), np.float32))


def small_drawing():
    """What the Draw page sends: its pad at 70x70."""
    return canvas_png(drawn_digit(7, np.random.default_rng(0)))


def test_a_lone_caller_is_read_in_process_as_a_worker_reads_it(workers):
    png = small_drawing()
    workers.read("cnn", png, caller="someone else")  # the last drawing was another caller's: to a worker
    before = workers.inline.reads
    image, probabilities = workers.read("cnn", png, caller="alone")
    assert workers.inline.reads == before  # the first of its drawings goes to a worker too
    again, same = workers.read("cnn", png, caller="alone")
    assert workers.inline.reads == before + 1
    assert np.array_equal(again, image) and np.allclose(same, probabilities, atol=1e-6)
    assert np.array_equal(image, preprocess(png))


def test_one_caller_on_many_threads_gets_every_answer_right(workers):
    """The in-process reader runs one drawing at a time (a LiteRT interpreter is not thread-safe): the others
    go to a worker."""
    png = small_drawing()
    workers.read("cnn", png, caller="threads")
    image, probabilities = workers.read("cnn", png, caller="threads")
    answers = []

    def ask():
        for _ in range(5):
            answers.append(workers.read("cnn", png, caller="threads"))

    threads = [threading.Thread(target=ask) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 60
    for got_image, got in answers:
        assert np.array_equal(got_image, image) and np.allclose(got, probabilities, atol=1e-6)


def test_callers_taking_turns_go_to_the_workers(workers):
    png = small_drawing()
    before = workers.inline.reads
    for caller in ("a", "b", "a", "b", "a"):
        workers.read("cnn", png, caller=caller)
    assert workers.inline.reads == before


def test_a_lone_caller_hears_the_same_errors(workers):
    workers.read("cnn", small_drawing(), caller="alone")
    with pytest.raises(BlankImage, match="nothing drawn"):
        workers.read("cnn", encode(drawing((0, 0, 0), size=(70, 70), width=0, ink=255)), caller="alone")
    with pytest.raises(BadImage, match="not a PNG"):
        workers.read("cnn", b"not an image", caller="alone")
    with pytest.raises(LoadError):
        workers.read("broken", small_drawing(), caller="alone")


def test_large_pictures_go_to_a_worker_even_for_a_lone_caller(workers):
    big = encode(drawing((40, 40, 200)))  # 280x280: beyond what is read in the web process
    workers.read("cnn", big, caller="alone")
    before = workers.inline.reads
    image, _ = workers.read("cnn", big, caller="alone")
    assert workers.inline.reads == before and np.array_equal(image, preprocess(big))


def test_a_forgotten_model_is_fetched_again(workers):
    png = small_drawing()
    workers.read("cnn", png, caller="alone")
    workers.read("cnn", png, caller="alone")
    assert "cnn" in workers.inline._forwards
    workers.forget("cnn")
    assert "cnn" not in workers.inline._forwards
    before = workers.inline.reads
    workers.read("cnn", png, caller="alone")
    assert workers.inline.reads == before + 1


def test_no_lone_caller_is_read_in_process_when_switched_off(home):
    workers = InferenceWorkers(Settings(home=home, models=home / "shipped", lone_drawer_inline=False), processes=1)
    try:
        assert workers.inline is None
        for _ in range(2):
            image, _ = workers.read("cnn", small_drawing(), caller="alone")
        assert np.array_equal(image, preprocess(small_drawing()))
    finally:
        workers.close()


def test_reading_leaves_nothing_in_the_system_temporary_folder(home, tmp_path, monkeypatch):
    """TensorFlow's converter writes a source file it removes only at a clean exit, and workers are killed: it
    goes in a scratch folder inside the instance folder, removed once the model is converted."""
    system_tmp = tmp_path / "system-tmp"
    system_tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(system_tmp))  # the spawned worker's temporary folder
    workers = InferenceWorkers(Settings(home=home, models=home / "shipped"), processes=1)
    try:
        workers.read("cnn", small_drawing())
        assert workers.flatbuffer("cnn") is not None  # converted there, not run in Keras
    finally:
        workers.close()
    assert list(system_tmp.iterdir()) == []
    assert not list((home / "models").glob(".tmp-*"))


def test_dead_workers_are_replaced(workers):
    png = encode(drawing((40, 40, 200)))
    for worker in list(workers._workers):
        worker.process.kill()
        worker.process.join()
    time.sleep(0.2)  # the readers notice
    for _ in range(3):  # a worker found dead is replaced, and the request still answered
        assert np.array_equal(workers.preprocess(png), preprocess(png))
    assert len(workers._workers) == 2 and all(worker.process.is_alive() for worker in workers._workers)


def test_a_worker_that_hangs_is_replaced_and_the_image_refused(home, monkeypatch):
    import os
    import signal

    import webapp.core.inference as module

    workers = InferenceWorkers(Settings(home=home, models=home / "shipped"), processes=1)
    try:
        png = encode(drawing((40, 40, 200)))
        assert np.array_equal(workers.preprocess(png), preprocess(png))  # started (TensorFlow loaded)
        monkeypatch.setattr(module, "TIMEOUT_S", 2)
        stuck = workers._workers[0].process
        os.kill(stuck.pid, signal.SIGSTOP)  # as if stuck on an image
        with pytest.raises(BadImage, match="could not be read"):
            workers.preprocess(png)
        stuck.join(10)
        assert not stuck.is_alive()
        monkeypatch.setattr(module, "TIMEOUT_S", 60)  # its replacement has to start
        assert np.array_equal(workers.preprocess(png), preprocess(png))
    finally:
        workers.close()
