"""Which device Keras computes on, and how it shares it, for whatever Keras backend is installed (tensorflow, jax, torch)."""
import os

import keras


def setup_accelerator():
    """Let the backend take GPU memory as it needs it instead of most of it at once, so a training job, the
    inference workers and the web process can share one card. Must run before the backend first computes."""
    backend = keras.backend.backend()
    if backend == "jax":
        # JAX takes 75% of the card when its backend starts (the first array, not `import keras`); the job and
        # each inference worker are separate processes, so the second would find the card full.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        return
    if backend != "tensorflow":  # torch's caching allocator already grows as needed
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: the setting is fixed by then
            pass


def use_one_cpu_thread():
    """Run the backend's CPU kernels on the calling thread only. A prediction is
    a few small images: a thread pool adds ~50% CPU (threads waking and
    spinning) for no speed, CPU a busy web process needs for its requests.
    Must run before the backend starts; later it is a no-op."""
    backend = keras.backend.backend()
    if backend == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:  # read when JAX's CPU backend starts
            os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false".strip()
        return
    if backend == "torch":
        import torch

        torch.set_num_threads(1)
        try:
            torch.set_num_interop_threads(1)
        except RuntimeError:  # only before torch's first parallel work
            pass
        return
    if backend != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised (e.g. a second app in one process)
        pass


def device_name():
    """'CPU', or the GPU's name (e.g. 'GPU: NVIDIA H100 80GB HBM3'), for whichever backend Keras uses."""
    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            if gpus:
                details = tf.config.experimental.get_device_details(gpus[0])
                return "GPU: " + details.get("device_name", gpus[0].name)
        elif backend == "jax":
            import jax

            device = jax.devices()[0]
            if device.platform == "gpu":
                return "GPU: " + device.device_kind
        elif backend == "torch":
            import torch

            if torch.cuda.is_available():
                return "GPU: " + torch.cuda.get_device_name(0)
    except Exception:  # a broken driver must not stop training on the CPU
        pass
    return "CPU"
