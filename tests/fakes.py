"""Stand-ins shared by the latency and simulation tests."""

import numpy as np


class Linear:
    """A fake prefill model: T(l) = a + b l seconds (what PrefillPool needs: ``time_s``)."""

    def __init__(self, a: float, b: float):
        self.a, self.b = a, b

    def time_s(self, lengths):
        return self.a + self.b * np.atleast_1d(np.asarray(lengths, float))
