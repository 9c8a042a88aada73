"""The fuzzing seed of this test run: new each run, so that CI explores new inputs; the session
header prints it, and FUZZ_SEED=<seed> replays a failed run."""

from __future__ import annotations

import os
import random

FUZZ_SEED = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**31))
