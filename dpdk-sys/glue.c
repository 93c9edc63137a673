#include "wrapper.h"

int mimamori_rte_errno(void) { return rte_errno; }
void *mimamori_pktmbuf_mtod(struct rte_mbuf *m) { return rte_pktmbuf_mtod(m, void *); }
void mimamori_prefetch0(const void *p) { rte_prefetch0(p); }
