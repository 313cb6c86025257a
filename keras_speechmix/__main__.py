"""`python -m keras_speechmix`: the `speechmix` command."""

import sys

from keras_speechmix.cli import main

sys.exit(main())
