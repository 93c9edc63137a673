//! `rte_ring`s of mbufs between stages.

use super::mbuf::Burst;
use super::{BURST, DpdkError};
use std::ffi::{CString, c_void};
use std::ptr::NonNull;

pub struct Ring {
    ptr: NonNull<dpdk_sys::rte_ring>,
}

// SAFETY: rte_rings are lock-free multi-lcore queues; the producer/consumer flags chosen at
// creation say how many lcores may use each end, and the dataplane respects them.
unsafe impl Send for Ring {}
unsafe impl Sync for Ring {}

impl Ring {
    /// A ring of `count` slots (a power of two). `single_producer` / `single_consumer`
    /// select the cheaper synchronisation when only one lcore uses that end.
    pub fn new(
        name: &str,
        count: u32,
        single_producer: bool,
        single_consumer: bool,
    ) -> Result<Ring, DpdkError> {
        let cname = CString::new(name).map_err(|_| DpdkError::Call {
            what: "ring".into(),
            reason: "name has a NUL".into(),
        })?;
        let mut flags = 0;
        if single_producer {
            flags |= dpdk_sys::RING_F_SP_ENQ;
        }
        if single_consumer {
            flags |= dpdk_sys::RING_F_SC_DEQ;
        }
        // SAFETY: plain constructor; NULL on failure.
        let p = unsafe {
            dpdk_sys::rte_ring_create(cname.as_ptr(), count, dpdk_sys::SOCKET_ID_ANY, flags)
        };
        NonNull::new(p)
            .map(|ptr| Ring { ptr })
            .ok_or_else(|| DpdkError::Call {
                what: format!("ring {name}"),
                reason: super::last_error(),
            })
    }

    /// Moves as much of `burst` as fits into the ring; what does not fit stays in the
    /// burst, at its start (for the caller's overload policy). Returns how many were
    /// enqueued.
    pub fn enqueue(&self, burst: &mut Burst) -> usize {
        let mut raw = [std::ptr::null_mut(); BURST];
        let n = burst.move_to_raw(&mut raw);
        // SAFETY: we pass `n` owned mbufs; the ring takes the first `done`.
        let done = unsafe {
            dpdk_sys::rte_ring_enqueue_burst(
                self.ptr.as_ptr(),
                raw.as_ptr() as *const *mut c_void,
                n as u32,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: those not taken are still ours.
        unsafe { burst.extend_raw(&raw[done..n]) };
        done
    }

    /// Dequeues up to the burst's free room.
    pub fn dequeue(&self, burst: &mut Burst) -> usize {
        let mut raw = [std::ptr::null_mut(); BURST];
        let room = (BURST - burst.len()) as u32;
        // SAFETY: `raw` has room for `room` pointers; dequeued mbufs become ours.
        let n = unsafe {
            dpdk_sys::rte_ring_dequeue_burst(
                self.ptr.as_ptr(),
                raw.as_mut_ptr() as *mut *mut c_void,
                room,
                std::ptr::null_mut(),
            )
        } as usize;
        // SAFETY: the first `n` entries were put there by `enqueue` as owned mbufs.
        unsafe { burst.extend_raw(&raw[..n]) };
        n
    }

    pub fn count(&self) -> u32 {
        // SAFETY: read-only.
        unsafe { dpdk_sys::rte_ring_count(self.ptr.as_ptr()) }
    }

    /// Frees whatever is left in the ring (at shutdown).
    pub fn drain(&self) -> usize {
        let mut n = 0;
        let mut b = Burst::default();
        loop {
            let got = self.dequeue(&mut b);
            if got == 0 {
                break;
            }
            n += got;
            b.clear();
        }
        n
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.drain();
        // SAFETY: no lcore uses the ring any more (joined before drop).
        unsafe { dpdk_sys::rte_ring_free(self.ptr.as_ptr()) }
    }
}
