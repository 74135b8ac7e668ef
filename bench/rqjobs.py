"""Job functions for the benchmark's RQ workers (bench/ on PYTHONPATH)."""

import time


def noop():
    return None


def sleep(seconds):
    time.sleep(seconds)
    return seconds
