//! Ethernet ports: any DPDK port (a PCI NIC on a box; net_af_packet, net_pcap, net_ring,
//! net_null, net_memif, net_tap here), one RX and one TX queue per stage that uses it.

use super::mbuf::{Burst, Mempool};
use super::{BURST, DpdkError};
use serde::Serialize;
use std::ffi::CString;

pub struct Port {
    id: u16,
    name: String,
}

#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct PortStats {
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// Dropped by the NIC/PMD because RX descriptors were full.
    pub rx_missed: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_nombuf: u64,
}

impl Port {
    /// Finds the port the EAL created for `name` (a vdev name such as `net_af_packet0`, or
    /// a PCI address), configures one RX and `tx_queues` TX queues, and starts it.
    pub fn open(name: &str, pool: &Mempool, tx_queues: u16) -> Result<Port, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Call {
            what: name.into(),
            reason: "name has a NUL".into(),
        })?;
        let mut id: u16 = 0;
        // SAFETY: valid C string and out-pointer.
        let ret = unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(cname.as_ptr(), &mut id) };
        if ret != 0 {
            return Err(DpdkError::Call { what: format!("port {name}"), reason: "no such port (the device did not probe: check the device string and the EAL log above)".into() });
        }
        let err = |what: &str, ret: i32| DpdkError::Call {
            what: format!("port {name}: {what}"),
            reason: super::errno_text(ret),
        };
        let conf = dpdk_sys::rte_eth_conf::default();
        // SAFETY: `conf` is a zeroed default configuration that lives across the call.
        let ret = unsafe { dpdk_sys::rte_eth_dev_configure(id, 1, tx_queues, &conf) };
        if ret < 0 {
            return Err(err("configure", ret));
        }
        // SAFETY: plain query.
        let socket = unsafe { dpdk_sys::rte_eth_dev_socket_id(id) }.max(0) as u32;
        // SAFETY: NULL rxconf means driver defaults; the pool outlives the port (the
        // dataplane stops and closes ports before freeing pools).
        let ret = unsafe {
            dpdk_sys::rte_eth_rx_queue_setup(id, 0, 1024, socket, std::ptr::null(), pool.raw())
        };
        if ret < 0 {
            return Err(err("rx queue setup", ret));
        }
        for q in 0..tx_queues {
            // SAFETY: NULL txconf means driver defaults.
            let ret =
                unsafe { dpdk_sys::rte_eth_tx_queue_setup(id, q, 1024, socket, std::ptr::null()) };
            if ret < 0 {
                return Err(err("tx queue setup", ret));
            }
        }
        // SAFETY: configured above.
        let ret = unsafe { dpdk_sys::rte_eth_dev_start(id) };
        if ret < 0 {
            return Err(err("start", ret));
        }
        // SAFETY: plain call; some vdevs do not support promiscuous mode, which is fine.
        unsafe { dpdk_sys::rte_eth_promiscuous_enable(id) };
        Ok(Port {
            id,
            name: name.to_string(),
        })
    }

    pub fn id(&self) -> u16 {
        self.id
    }
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Receives up to the burst's free room from RX queue 0.
    pub fn rx(&self, burst: &mut Burst) -> usize {
        let mut raw = [std::ptr::null_mut(); BURST];
        let room = BURST - burst.len();
        // SAFETY: `raw` has room for `room` pointers; the PMD hands us ownership of the
        // mbufs it returns. RX queue 0 is polled by exactly one lcore (the dataplane's
        // layout guarantees it).
        let n = unsafe { dpdk_sys::rte_eth_rx_burst(self.id, 0, raw.as_mut_ptr(), room as u16) }
            as usize;
        // SAFETY: the first `n` entries are valid, freshly received mbufs we now own.
        unsafe { burst.extend_raw(&raw[..n]) };
        n
    }

    /// Sends the burst on TX queue `q`; what the PMD does not take is freed and counted
    /// by the caller from the return value (sent, not sent).
    pub fn tx(&self, q: u16, burst: &mut Burst) -> (usize, usize) {
        let mut raw = [std::ptr::null_mut(); BURST];
        let n = burst.move_to_raw(&mut raw);
        if n == 0 {
            return (0, 0);
        }
        // SAFETY: we pass ownership of `n` valid mbufs; the PMD takes the first `sent`.
        // TX queue `q` is used by one lcore only.
        let sent =
            unsafe { dpdk_sys::rte_eth_tx_burst(self.id, q, raw.as_mut_ptr(), n as u16) } as usize;
        for &p in &raw[sent..n] {
            // SAFETY: not taken by the PMD, so still ours: take it back to free it.
            drop(unsafe { super::Mbuf::from_raw(p) });
        }
        (sent, n - sent)
    }

    pub fn stats(&self) -> PortStats {
        let mut s = dpdk_sys::rte_eth_stats::default();
        // SAFETY: valid out-pointer; reading stats is allowed from any thread.
        unsafe { dpdk_sys::rte_eth_stats_get(self.id, &mut s) };
        PortStats {
            rx_packets: s.ipackets,
            tx_packets: s.opackets,
            rx_bytes: s.ibytes,
            tx_bytes: s.obytes,
            rx_missed: s.imissed,
            rx_errors: s.ierrors,
            tx_errors: s.oerrors,
            rx_nombuf: s.rx_nombuf,
        }
    }

    /// Stops and closes the port; the PMD frees the mbufs in its rings.
    pub fn close(self) {
        // SAFETY: no lcore polls the port any more (all joined before this is called).
        unsafe {
            dpdk_sys::rte_eth_dev_stop(self.id);
            dpdk_sys::rte_eth_dev_close(self.id);
        }
    }
}
