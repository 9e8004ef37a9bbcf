"""What every command line sets up first, before anything imports Keras or TensorFlow."""
import os
import sys
from pathlib import Path

# Keras' own defaults, the settings this code is written for (util/keras_home/keras.json).
KERAS_HOME = Path(__file__).resolve().parent / "keras_home"


def start_script():
    """Call first in an entry point's `if __name__ == "__main__":`."""
    # The networks, the training step and the checkpoints are TensorFlow code in channels-last
    # float32: Keras runs so whatever the user's own settings are, in KERAS_BACKEND or in
    # ~/.keras/keras.json (another backend, channels_first, float16). Keras reads both once, when
    # first imported; the variable wins over the file.
    os.environ["KERAS_BACKEND"] = "tensorflow"
    os.environ["KERAS_HOME"] = str(KERAS_HOME)
    # A file name need not be UTF-8 (Python holds its other bytes as surrogates): stdout prints
    # them escaped, as stderr does, instead of stopping at the first such name.
    sys.stdout.reconfigure(errors="backslashreplace")
