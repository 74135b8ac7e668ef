"""The Celery app of the benchmark's Celery worker (bench/run starts it as
`python3 -m celery -A celeryapp worker ...` with bench/ on PYTHONPATH).

Its tasks carry celeriac's built-in names, so the same messages run on
either worker:

    celeriac.noop()          returns None
    celeriac.sleep(seconds)  sleeps, returns seconds
    celeriac.spin()          busy loop; its hard time limit (2 s, as
                             `time_limit: 2s` in celeriac's bench config)
                             ends it

BENCH_REDIS_URL is the broker and result backend; BENCH_TRACK_STARTED=1
stores STARTED like celeriac's `track_started: true`.
"""

import os
import time

from celery import Celery

_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("celeriac-bench", broker=_url, backend=_url)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_track_started=os.environ.get("BENCH_TRACK_STARTED") == "1",
    worker_hijack_root_logger=False,
)


@app.task(name="celeriac.noop")
def noop():
    return None


@app.task(name="celeriac.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task(name="celeriac.spin", time_limit=2)
def spin():
    while True:
        pass
