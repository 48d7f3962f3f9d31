"""numpy's element-wise helpers as the roofline uses them, without numpy for plain numbers.

Every roofline function of a token count takes a Python number or a numpy array of them. Arrays
(the planner's length grids) go to numpy exactly as before; plain numbers (`estimate`, `kv`,
decode batch searches) are computed with Python floats, which are the same IEEE doubles with the
same results, so that a command pricing one deployment never imports numpy (~45 ms, a third of
`prfaas-plan estimate`). numpy is imported on the first array.
"""

from __future__ import annotations

import math

_NUMBER = (int, float)  # bool is an int; numpy's float64 is a float


def _plain(*xs) -> bool:
    return all(isinstance(x, _NUMBER) for x in xs)


def asfloat(x):
    """``np.asarray(x, dtype=float)``; a float for a plain number."""
    if isinstance(x, _NUMBER):
        return float(x)
    import numpy as np

    return np.asarray(x, dtype=float)


def minimum(a, b):
    """``np.minimum``: nan if either is nan."""
    if _plain(a, b):
        return math.nan if a != a or b != b else (a if a <= b else b)
    import numpy as np

    return np.minimum(a, b)


def maximum(a, b):
    """``np.maximum``: nan if either is nan."""
    if _plain(a, b):
        return math.nan if a != a or b != b else (a if a >= b else b)
    import numpy as np

    return np.maximum(a, b)


def where(condition, a, b):
    """``np.where`` (both branches already computed)."""
    if _plain(condition, a, b):
        return a if condition else b
    import numpy as np

    return np.where(condition, a, b)


def ndim(x) -> int:
    if isinstance(x, _NUMBER):
        return 0
    import numpy as np

    return np.ndim(x)
