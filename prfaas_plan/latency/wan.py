"""A wide-area TCP connection's throughput bound, and the rate one KV transfer can reach over
``connections`` such connections ([PRFAAS] streams KV over multi-connection TCP between datacenters).

One connection with round-trip time RTT and packet-loss probability p moves at most

    r = min(W_max / RTT,  MSS / RTT * C / sqrt(p)),   C = sqrt(3/2),

the window bound (a sender never has more than its window W_max unacknowledged) and the
steady-state congestion-avoidance bound of Mathis, Semke, Mahdavi and Ott, "The macroscopic
behavior of the TCP congestion avoidance algorithm", ACM SIGCOMM CCR 27(3), 1997, Eq. 3 (periodic
loss, C = sqrt(3/2) ~ 1.22). With p = 0 only the window binds; with RTT = 0 nothing does (inf).

A transfer striped over n connections gets min(its share of the link, n r)
(:func:`transfer_rate_bytes_per_s`). Assumptions: the connections are in steady state (no slow
start: KV transfers of hundreds of MB last many RTTs) and the loss is random, not caused by the
transfer itself (the shared-pipe model already accounts for congestion on the link).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import PlanError

#: Maximum segment size, bytes: a 1500-byte Ethernet MTU less 20 bytes of IPv4 and 20 of TCP
#: header (RFC 879; RFC 6691), the common WAN path MTU.
MSS_BYTES = 1460.0

#: Largest window a connection keeps in flight, bytes: Linux's default ``net.ipv4.tcp_rmem`` max
#: of 6 MiB (kernel Documentation/networking/ip-sysctl.rst, "tcp_rmem ... max: ... Default:
#: between 131072 and 6MB"), the receive buffer that bounds the advertised window untuned.
MAX_WINDOW_BYTES = 6.0 * 2**20

#: Mathis et al. 1997's constant for periodic loss with delayed ACKs off: sqrt(3/2).
MATHIS_C = math.sqrt(1.5)


def connection_rate_bytes_per_s(rtt_s: float, loss_frac: float, mss_bytes: float = MSS_BYTES,
                                max_window_bytes: float = MAX_WINDOW_BYTES) -> float:
    """One TCP connection's throughput bound, bytes/s: min(W_max / RTT, MSS / RTT * C / sqrt(p))
    (module docstring; Mathis et al. 1997 Eq. 3). inf when RTT is 0."""
    if not (rtt_s >= 0 and math.isfinite(rtt_s)):
        raise PlanError(f"link RTT must be a finite number >= 0 s, got {rtt_s}")
    if not 0 <= loss_frac < 1:
        raise PlanError(f"link loss_frac must be in [0, 1), got {loss_frac}")
    if rtt_s == 0:
        return math.inf
    window = max_window_bytes / rtt_s
    if loss_frac == 0:
        return window
    return min(window, mss_bytes / rtt_s * MATHIS_C / math.sqrt(loss_frac))


def transfer_cap_bytes_per_s(connections: int | None, rtt_s: float, loss_frac: float) -> float:
    """The most one transfer striped over ``connections`` connections can reach, bytes/s:
    n x :func:`connection_rate_bytes_per_s`; inf for unlimited connections (None)."""
    if connections is None:
        return math.inf
    if not (isinstance(connections, (int, np.integer)) and connections >= 1):
        raise PlanError(f"link connections must be an integer >= 1, got {connections!r}")
    return connections * connection_rate_bytes_per_s(rtt_s, loss_frac)


def transfer_rate_bytes_per_s(share_bytes_per_s, cap_bytes_per_s: float):
    """The rate a transfer gets: min(its share of the link, the connection-limited cap)."""
    return np.minimum(share_bytes_per_s, cap_bytes_per_s)
