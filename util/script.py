"""What every command line sets up first, before anything imports Keras or TensorFlow."""
import sys


def start_script():
    """Call first in an entry point's `if __name__ == "__main__":`."""
    # A file name need not be UTF-8 (Python holds its other bytes as surrogates): stdout prints
    # them escaped, as stderr does, instead of stopping at the first such name.
    sys.stdout.reconfigure(errors="backslashreplace")
