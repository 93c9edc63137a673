/* The DPDK surface mimamori uses: EAL, lcores, mempools, mbufs, ethdev, rings. */
#include <rte_config.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_launch.h>
#include <rte_cycles.h>
#include <rte_mempool.h>
#include <rte_mbuf.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_dev.h>
#include <rte_bus_vdev.h>
#include <rte_prefetch.h>

/* What bindgen cannot see: rte_errno is a per-lcore TLS macro, mtod a macro. */
int mimamori_rte_errno(void);
void *mimamori_pktmbuf_mtod(struct rte_mbuf *m);
void mimamori_prefetch0(const void *p);
