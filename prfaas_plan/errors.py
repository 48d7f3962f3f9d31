"""The one project exception. The CLI turns it into a one-line message and a non-zero exit."""

import re

#: The longest message a PlanError carries: enough for a path, a key and a value, short enough
#: that a hostile value (a megabyte of YAML) cannot flood a terminal or a log.
MAX_MESSAGE_CHARS = 1000


class PlanError(Exception):
    """Bad input or an infeasible request, with a message fit to show a user as one line.

    Messages name the file (where there is one), the key and what is wrong, e.g.
    ``hardware/h200.yaml: key 'memory.bandwidth_tb_per_s': must be > 0, got -1``. Whatever a
    message is built from, it is kept to one line (line breaks become spaces) of at most
    ``MAX_MESSAGE_CHARS`` characters.
    """

    def __init__(self, message: object = ""):
        text = re.sub(r"\s*[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]+\s*", " ", str(message)).strip()
        if len(text) > MAX_MESSAGE_CHARS:
            text = text[: MAX_MESSAGE_CHARS - 1] + "\u2026"
        super().__init__(text)
