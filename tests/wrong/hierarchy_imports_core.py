"""Wrong answer (exercise 4.10): the right number, read from the course's placement table."""

from shared import network

# the check that rejects this answer, and words its one-line reason must say
REJECTED_BY = ("check_imports", "imports shared.network")


def hybrid_tokens_per_chip(peak, fast_bw, network_bw, n_within, n_across, itemsize):
    return max(network.fsdp_tokens(peak, fast_bw, itemsize, n_within),
               network.dp_tokens(peak, network_bw, itemsize, n_across, n_within))
