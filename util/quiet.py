"""TensorFlow without its start-up noise. The entry points call `quiet_tensorflow()` before they
import it, once their options are parsed.

Unless the user has set TF_CPP_MIN_LOG_LEVEL (then nothing here changes), TensorFlow's C++ log is
set to show nothing below fatal (Python exceptions still carry every error), and TensorFlow is
imported with the lines its C++ start-up writes before its logger exists (oneDNN, CUDA stubs, CPU
features: they ignore the log level) held back; any other line is passed on.
"""
import os
import sys
import tempfile

START_UP = ("WARNING: All log messages before absl::InitializeLog()", "I0000 ", "W0000 ",
            "To enable the following instructions")


def quiet_tensorflow():
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ or "tensorflow" in sys.modules:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            for line in held.read().decode(errors="replace").splitlines(keepends=True):
                if not line.startswith(START_UP):
                    sys.stderr.write(line)
            sys.stderr.flush()
