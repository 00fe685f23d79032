"""The distributed mode's names in Redis, and a client that never hangs: the web processes and the training
workers agree on these keys, nothing else (Celery carries the tasks, Flask-SocketIO its own channel)."""
from urllib.parse import urlsplit, urlunsplit

QUEUE = "neuronlab"  # Celery's queue of training tasks
TASK = "neuronlab.train"
EVENTS = "neuronlab:events"  # one stream of every job's events, read by every web process
EVENTS_MAXLEN = 100_000  # about a day of batch events; XADD trims it (approximately)
SOCKETIO_CHANNEL = "neuronlab-socketio"  # Flask-SocketIO's pub/sub channel between web processes
BOOT = "neuronlab:boot"  # set once; gone after a restart that lost Redis's data (queued tasks with it)
CONNECT_TIMEOUT_S = 2  # a Redis that is down answers at once; one unreachable must not hang a start
READ_TIMEOUT_S = 5


def cancel_key(job_id):
    return f"neuronlab:cancel:{job_id}"  # exists: the job should stop after its current batch


def alive_key(job_id):
    return f"neuronlab:alive:{job_id}"  # the worker's heartbeat (TTL ALIVE_TTL_S, renewed every ALIVE_EVERY_S)


def claim_key(job_id):
    return f"neuronlab:claim:{job_id}"  # set by the worker that runs the job: a second delivery is skipped


def model_key(job_id):
    return f"neuronlab:model:{job_id}"  # the trained model's files, for the web's model store (TTL 1 h)


ALIVE_TTL_S = 10
ALIVE_EVERY_S = 3
FINISHED_TTL_S = 600  # the heartbeat key of a job that ended stays this long
MODEL_TTL_S = 3600
CANCEL_TTL_S = 7 * 24 * 3600
CLAIM_TTL_S = 7 * 24 * 3600


class RedisUnavailable(RuntimeError):
    """Redis cannot be reached; the message names the URL (without its password) and the cause."""


def shown_url(url):
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))


def redis_client(url, read_timeout=READ_TIMEOUT_S):
    """A redis-py client whose connects and reads time out (`read_timeout` None: a blocking read may wait)."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=read_timeout,
                                health_check_interval=15)


def check_redis(url):
    """Ping Redis once, quickly; RedisUnavailable says which URL and why."""
    try:
        import celery  # noqa: F401  (the web sends tasks, the worker runs them)
        import redis
    except ImportError:
        raise RedisUnavailable("NEURONLAB_REDIS_URL is set but the redis and celery packages are not installed: "
                               "pip install -r requirements-redis.txt") from None
    try:
        redis_client(url).ping()
    except ValueError as exc:  # not a redis:// URL
        raise RedisUnavailable(f"NEURONLAB_REDIS_URL={shown_url(url)!r} is not a Redis URL: {exc}") from None
    except redis.RedisError as exc:
        raise RedisUnavailable(f"cannot reach Redis at {shown_url(url)}: {exc}") from None
