"""The preprocessing workers give exactly what the in-process recipe gives,
report bad and blank images the same way, and survive a worker's death."""
import threading

import numpy as np
import pytest

from tests.test_preprocess import drawing, encode
from webapp.core.preprocess import BadImage, BlankImage, preprocess
from webapp.core.preprocess_pool import PreprocessPool


@pytest.fixture(scope="module")
def pool():
    pool = PreprocessPool(2, max_pixels=1_000_000)
    yield pool
    pool.close()


def test_same_image_as_in_process(pool):
    png = encode(drawing((30, 50, 180), mode="RGB", ink=(20, 20, 120), paper=(250, 250, 250)))
    assert np.array_equal(pool.preprocess(png), preprocess(png))


def test_bad_blank_and_too_large_images_raise_as_in_process(pool):
    with pytest.raises(BadImage, match="not a PNG"):
        pool.preprocess(b"not an image")
    with pytest.raises(BlankImage, match="nothing drawn"):
        pool.preprocess(encode(drawing((0, 0, 0), width=0, ink=255)))
    with pytest.raises(BadImage, match="limit is 1,000,000"):
        pool.preprocess(encode(drawing((40, 40, 200), size=(1200, 1000))))


def test_concurrent_requests_each_get_their_own_image(pool):
    pngs = [encode(drawing((10 + 7 * i, 20, 100 + 9 * i))) for i in range(12)]
    answers = [None] * len(pngs)

    def ask(i):
        answers[i] = pool.preprocess(pngs[i])

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(pngs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for png, answer in zip(pngs, answers):
        assert np.array_equal(answer, preprocess(png))


def test_dead_workers_are_replaced(pool):
    png = encode(drawing((40, 40, 200)))
    for process in list(pool._workers):
        process.kill()
        process.join()
    for _ in range(3):  # a worker found dead is replaced, and the image still answered
        assert np.array_equal(pool.preprocess(png), preprocess(png))
    assert len(pool._workers) == 2 and any(process.is_alive() for process in pool._workers)


def hang(connection):
    import time

    time.sleep(60)


def test_a_worker_that_hangs_on_an_image_is_replaced_and_the_image_refused(monkeypatch):
    import webapp.core.preprocess_pool as module

    monkeypatch.setattr(module, "TIMEOUT_S", 0.5)
    pool = PreprocessPool(1, max_pixels=1_000_000)
    try:
        real = pool._idle.get()
        ours, theirs = pool._context.Pipe()
        stuck = pool._context.Process(target=hang, args=(theirs,), daemon=True)
        stuck.start()
        pool._workers.append(stuck)
        pool._idle.put((stuck, ours))
        png = encode(drawing((40, 40, 200)))
        with pytest.raises(BadImage, match="could not be read"):
            pool.preprocess(png)
        assert not stuck.is_alive()
        assert np.array_equal(pool.preprocess(png), preprocess(png))
        pool._idle.put(real)
    finally:
        pool.close()
