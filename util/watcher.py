"""The watchdog process of a multiworker training (distribute.Watchdog starts it; standard library only).

    python util/watcher.py PARENT_PID SIGNAL_FD SECTION_FD TIMEOUT GRACE

A collective whose peers never arrive blocks inside TensorFlow while holding Python's GIL: no
signal handler, no Python thread of the training process can run, so it has to be watched from
outside. The training process sends "+" / "-" on SECTION_FD as it enters and leaves a section that
waits on the other workers; SIGNAL_FD is its signal.set_wakeup_fd pipe, written by the C signal
handler even while Python is stuck. This process kills it (SIGKILL, after one line on stderr)
- when a section lasts more than TIMEOUT seconds (0: never), or
- when, after Ctrl-C or SIGTERM, the section it is in has not ended GRACE seconds after the signal
  and has lasted twice the longest section so far (a slow but healthy collective may finish; a
  long start of the cluster under load does not stretch the wait of a worker stuck since). (While TensorFlow sets the cluster up, the training
  process blocks SIGTERM, which TensorFlow's preemption notifier would swallow, and Ctrl-C: a
  pending one, read from /proc, counts as received.)
It ends by itself when the training process closes the pipe (exits, however).
"""
import os
import select
import signal
import sys
import time


def watch(parent, signal_fd, section_fd, timeout, grace):
    since, longest, signal_at = None, 0.0, None
    while True:
        ready, _, _ = select.select([signal_fd, section_fd], [], [], 0.2)
        now = time.monotonic()
        if signal_fd in ready and os.read(signal_fd, 64):
            signal_at = now
        if section_fd in ready:
            data = os.read(section_fd, 4096)
            if not data:
                return 0  # the training process has ended
            for mark in data.decode("ascii", "replace"):
                if mark == "+":
                    since = now
                elif mark == "-" and since is not None:
                    longest, since = max(longest, now - since), None
        if since is None:
            continue
        if signal_at is None and stop_pending(parent):
            signal_at = now
        # After a stop request: `grace` seconds, and the open section has lasted twice the longest
        # one so far (a slow but healthy collective may finish). A long section measured before
        # (the cluster's start under load) must not stretch the wait after the request.
        wait = max(grace, 2 * longest)
        if signal_at is not None and now - max(since, signal_at) > grace and now - since > 2 * longest:
            return give_up(parent, f"stopped: the other workers did not answer within {wait:.0f} s of the stop "
                                   f"request; exiting without saving (the last checkpoint is kept)")
        if timeout and now - since > timeout:
            return give_up(parent, f"error: no answer from the other workers for {timeout:g} s (they did not "
                                   f"start, or stopped): giving up (--worker-timeout); the last checkpoint is kept")


def stop_pending(pid):
    """A SIGTERM or Ctrl-C the training process blocks while TensorFlow sets up the cluster
    (distribute.Watchdog); Linux's /proc tells."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("ShdPnd:"):
                    pending = int(line.split()[1], 16)
                    return any(pending >> (signum - 1) & 1 for signum in (signal.SIGTERM, signal.SIGINT))
    except (OSError, ValueError):
        pass
    return False


def give_up(parent, message):
    print(message, file=sys.stderr, flush=True)
    try:
        os.kill(parent, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return 0


if __name__ == "__main__":
    parent, signal_fd, section_fd = (int(a) for a in sys.argv[1:4])
    sys.exit(watch(parent, signal_fd, section_fd, float(sys.argv[4]), float(sys.argv[5])))
