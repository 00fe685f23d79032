"""bench/gpu.py: it prints its table on the bundled sample, and it never imports TensorFlow when Keras's backend is JAX."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2"}

# Run in a fresh interpreter: TensorFlow is refused outright (an import of it raises and is counted), and `keras`
# is a stand-in whose backend is "jax", so this needs no JAX either.
REFUSE_TENSORFLOW = r"""
import importlib.abc, sys, types

refused = []

class RefuseTensorFlow(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "tensorflow" or name.startswith("tensorflow."):
            refused.append(name)
            raise ImportError(f"{name} refused: this check runs as a host without TensorFlow")

sys.meta_path.insert(0, RefuseTensorFlow())
"""
STAND_IN_KERAS = r"""
class Anything:
    def __getattr__(self, name):
        return Anything()
    def __call__(self, *args, **kwargs):
        return Anything()

keras = types.ModuleType("keras")
keras.__getattr__ = lambda name: Anything()
keras.backend = types.SimpleNamespace(backend=lambda: "jax")
sys.modules["keras"] = keras
"""
TENSORFLOW_LOADED = r"""
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "tensorflow")
print("refused:", refused, "loaded:", loaded)
sys.exit(1 if refused or loaded else 0)
"""
# The bench and every webapp module it trains with (import_training_parts), then what the device helpers do for JAX.
NO_TENSORFLOW_CHECK = REFUSE_TENSORFLOW + r"""
import bench.gpu as gpu
assert "keras" not in sys.modules, "bench.gpu imports Keras before it has read its arguments"
""" + STAND_IN_KERAS + r"""
_, networks, device = gpu.import_training_parts()
device.setup_accelerator()
device.use_one_cpu_thread()
print("device:", device.device_name())
""" + TENSORFLOW_LOADED


def run(args, backend=None, python=sys.executable, timeout=240):
    """`python args` in the repo; KERAS_BACKEND=backend, or unset for Keras's default (TensorFlow)."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    env.update(QUIET, **({"KERAS_BACKEND": backend} if backend else {}))
    return subprocess.run([python, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def test_one_epoch_on_the_sample_prints_the_table():
    result = run(["-m", "bench.gpu", "--sample", "--epochs", "1"])
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("backend: tensorflow") for line in lines), result.stdout
    assert any(line.startswith("device:  ") for line in lines), result.stdout
    assert any(line.startswith("data:    sample (2,000 training, 500 test digits)") for line in lines), result.stdout
    header = next(line for line in lines if line.startswith("net "))
    for column in ("epoch 1 s", "later s/epoch", "total s", "test acc", "GTX 1060"):
        assert column in header
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in ("mlp", "cnn")}
    assert rows["mlp"][1] == "1" and rows["mlp"][-2:] == ["18", "s"], rows  # one epoch, the tutorial's figure
    assert rows["cnn"][1] == "1" and rows["cnn"][-2:] == ["46", "s"], rows
    assert rows["mlp"][3] == "-"  # no later epoch to time after a one-epoch run
    assert rows["mlp"][-3].endswith("%")


def test_no_tensorflow_is_imported_for_the_jax_backend():
    result = run(["-c", NO_TENSORFLOW_CHECK], backend="jax", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "refused: [] loaded: []" in result.stdout


def test_the_check_catches_an_import_of_tensorflow():
    """The check above can fail: the same harness, with an import of TensorFlow planted where a helper would do it."""
    planted = NO_TENSORFLOW_CHECK.replace("device.setup_accelerator()\n",
                                          "try:\n    import tensorflow\nexcept ImportError:\n    pass\n")
    assert planted != NO_TENSORFLOW_CHECK
    result = run(["-c", planted], backend="jax", timeout=60)
    assert result.returncode == 1 and "refused: ['tensorflow']" in result.stdout, result.stdout + result.stderr


def jax_python():
    """A Python with JAX: $NEURONLAB_JAX_PYTHON (e.g. /tmp/venv-jax/bin/python), or this one if it has JAX."""
    named = os.environ.get("NEURONLAB_JAX_PYTHON")
    if named:
        return named
    probe = subprocess.run([sys.executable, "-c", "import jax"], capture_output=True)
    return sys.executable if probe.returncode == 0 else None


@pytest.mark.skipif(jax_python() is None, reason="no Python with JAX here (set NEURONLAB_JAX_PYTHON to one)")
def test_the_bench_trains_on_jax_without_tensorflow():
    result = run(["-m", "bench.gpu", "--sample", "--epochs", "1", "--nets", "mlp"], backend="jax",
                 python=jax_python())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "backend: jax" in result.stdout
    assert "TensorFlow loaded: no" in result.stdout


def test_tensorboard_is_off_with_the_reason_on_jax(tmp_path):
    """A job on JAX trains without TensorBoard and says why: Keras's callback writes through TensorFlow."""
    script = REFUSE_TENSORFLOW + STAND_IN_KERAS + f"""
from webapp.core.job_progress import make_tensorboard_callback
callback, status = make_tensorboard_callback({str(tmp_path / "tensorboard")!r})
print("callback:", callback, "status:", status)
""" + TENSORFLOW_LOADED
    result = run(["-c", script], backend="jax", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "callback: None status: {'on': False, 'why': " in result.stdout
    assert "jax backend" in result.stdout
