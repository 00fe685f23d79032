"""Which device Keras computes on, for whatever backend is installed."""
import keras


def setup_accelerator():
    """Let TensorFlow take GPU memory as it needs it instead of all at once,
    so a training job and the web process can share one card."""
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: the setting is fixed by then
            pass


def use_one_cpu_thread():
    """Run TensorFlow's CPU kernels on the calling thread only. A prediction is
    a few small images: a thread pool adds ~50% CPU (threads waking and
    spinning) for no speed, CPU a busy web process needs for its requests.
    Must run before TensorFlow starts; later it is a no-op."""
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised (e.g. a second app in one process)
        pass


def device_name():
    """'CPU', or the GPU's name (e.g. 'GPU: NVIDIA H100 80GB HBM3')."""
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
