//! Mempools and the owned mbuf: an `Mbuf` frees itself exactly once, on drop, unless it
//! was handed to DPDK (`into_raw`) by a TX burst or a ring.
//!
//! A pool is never freed by safe code: `Mempool::new` hands out a `&'static Mempool`, so
//! no mbuf, port queue or stage can outlive the pool it points into. DPDK releases the
//! pool's memory with everything else at `rte_eal_cleanup`, after every lcore is joined.

use super::{BURST, DpdkError};
use std::ffi::CString;
use std::ptr::NonNull;

pub struct Mempool {
    ptr: NonNull<dpdk_sys::rte_mempool>,
}

// SAFETY: a DPDK mempool is designed for concurrent use from many lcores (per-lcore
// caches plus a lock-free ring underneath).
unsafe impl Send for Mempool {}
unsafe impl Sync for Mempool {}

impl Mempool {
    /// A packet mempool of `n` mbufs with the default data room (2 KB + headroom), alive
    /// for the rest of the process (one per `run`; the handle is a pointer's size).
    pub fn new(name: &str, n: u32, socket: i32) -> Result<&'static Mempool, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Call {
            what: "mempool".into(),
            reason: "name has a NUL".into(),
        })?;
        // SAFETY: plain constructor call with valid arguments; returns NULL on failure.
        let ptr = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n,
                256,
                0,
                dpdk_sys::RTE_MBUF_DEFAULT_BUF_SIZE as u16,
                socket,
            )
        };
        NonNull::new(ptr)
            .map(|ptr| &*Box::leak(Box::new(Mempool { ptr })))
            .ok_or_else(|| DpdkError::Call {
                what: format!("mempool {name} ({n} mbufs)"),
                reason: format!(
                    "{} (not enough hugepage memory? try --no-huge or scripts/setup)",
                    super::last_error()
                ),
            })
    }

    /// Mbufs currently taken from the pool (including those in per-lcore caches' view).
    pub fn in_use(&self) -> u32 {
        // SAFETY: read-only walk of the pool's counters.
        unsafe { dpdk_sys::rte_mempool_in_use_count(self.ptr.as_ptr()) }
    }

    pub fn available(&self) -> u32 {
        // SAFETY: as above.
        unsafe { dpdk_sys::rte_mempool_avail_count(self.ptr.as_ptr()) }
    }

    pub(crate) fn raw(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// A fresh mbuf holding a copy of `data`, or `None` if the pool is empty or the frame
    /// does not fit one segment.
    pub fn alloc_copy(&self, data: &[u8]) -> Option<Mbuf> {
        // SAFETY: allocation from a valid pool; NULL when empty.
        let m = NonNull::new(unsafe { dpdk_sys::rte_pktmbuf_alloc(self.ptr.as_ptr()) })?;
        let mut mbuf = Mbuf(m);
        // SAFETY: rte_pktmbuf_append returns a pointer to `len` writable bytes inside this
        // mbuf's data room, or NULL when they do not fit.
        let dst =
            unsafe { dpdk_sys::rte_pktmbuf_append(mbuf.0.as_ptr(), data.len() as u16) } as *mut u8;
        if dst.is_null() || data.len() > u16::MAX as usize {
            return None; // `mbuf` drops and returns to the pool
        }
        // SAFETY: `dst` has room for data.len() bytes (checked above) and does not overlap.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) };
        mbuf.set_port(0);
        Some(mbuf)
    }
}

/// One packet buffer, owned.
pub struct Mbuf(NonNull<dpdk_sys::rte_mbuf>);

// SAFETY: an mbuf is owned by exactly one Mbuf at a time, so moving it between lcores is
// how DPDK pipelines work (rings carry exactly this).
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf from DPDK (RX burst, ring dequeue).
    ///
    /// # Safety
    /// `p` must be a valid mbuf that nobody else owns.
    pub(crate) unsafe fn from_raw(p: *mut dpdk_sys::rte_mbuf) -> Option<Mbuf> {
        NonNull::new(p).map(Mbuf)
    }

    /// Gives ownership back to DPDK (TX burst, ring enqueue).
    pub(crate) fn into_raw(self) -> *mut dpdk_sys::rte_mbuf {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// The frame (first segment; the ports are configured without scatter).
    pub fn data(&self) -> &[u8] {
        // SAFETY: mtod points at data_len initialised bytes inside the mbuf, which we own
        // for the lifetime of the borrow.
        unsafe {
            let m = self.0.as_ptr();
            let p = dpdk_sys::mimamori_pktmbuf_mtod(m) as *const u8;
            std::slice::from_raw_parts(p, usize::from((*m).data_len))
        }
    }

    /// The port number stored in the mbuf (RX port; the dataplane reuses it for the TX port).
    pub fn port(&self) -> u16 {
        // SAFETY: plain field read of an mbuf we own.
        unsafe { (*self.0.as_ptr()).port }
    }

    pub fn set_port(&mut self, port: u16) {
        // SAFETY: plain field write of an mbuf we own.
        unsafe { (*self.0.as_ptr()).port = port }
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own the mbuf and it has not been handed back to DPDK (into_raw forgets).
        unsafe { dpdk_sys::rte_pktmbuf_free(self.0.as_ptr()) }
    }
}

/// Up to [`BURST`] owned mbufs, without allocation.
pub struct Burst {
    slots: [Option<Mbuf>; BURST],
    len: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| None),
            len: 0,
        }
    }
}

impl Burst {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn is_full(&self) -> bool {
        self.len == BURST
    }
    /// Adds an mbuf; when full, it is handed back (the caller decides what that means).
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST {
            return Err(m);
        }
        self.slots[self.len] = Some(m);
        self.len += 1;
        Ok(())
    }
    pub fn get(&self, i: usize) -> Option<&Mbuf> {
        self.slots.get(i).and_then(|s| s.as_ref())
    }
    pub fn take(&mut self, i: usize) -> Option<Mbuf> {
        self.slots.get_mut(i).and_then(|s| s.take())
    }
    /// Frees everything still held and empties the burst.
    pub fn clear(&mut self) {
        for s in &mut self.slots[..self.len] {
            *s = None;
        }
        self.len = 0;
    }
    /// Moves the held mbufs into a raw array for DPDK; returns how many.
    pub(crate) fn move_to_raw(&mut self, out: &mut [*mut dpdk_sys::rte_mbuf; BURST]) -> usize {
        let mut n = 0;
        for s in &mut self.slots[..self.len] {
            if let Some(m) = s.take() {
                out[n] = m.into_raw();
                n += 1;
            }
        }
        self.len = 0;
        n
    }
    /// Takes ownership of `n` raw mbufs from DPDK, appending them.
    ///
    /// # Safety
    /// Each of `raw[..n]` must be a valid mbuf owned by nobody else.
    pub(crate) unsafe fn extend_raw(&mut self, raw: &[*mut dpdk_sys::rte_mbuf]) {
        for &p in raw {
            // SAFETY: per the contract above.
            if let Some(m) = unsafe { Mbuf::from_raw(p) }
                && let Err(m) = self.push(m)
            {
                drop(m); // more than a burst: cannot happen with the callers' sizes
            }
        }
    }
}

impl Drop for Burst {
    fn drop(&mut self) {
        self.clear();
    }
}
