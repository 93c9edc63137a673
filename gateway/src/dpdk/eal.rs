//! EAL initialisation (once per process) and lcore launch/join.

use super::DpdkError;
use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, Ordering};

static INITIALISED: AtomicBool = AtomicBool::new(false);

pub type LcoreId = u32;

/// Proof that the EAL is up; dropping it runs `rte_eal_cleanup`.
pub struct Eal {
    _args: Vec<CString>,
    /// The EAL's runtime folder for this `--file-prefix`, removed after cleanup so runs do
    /// not accumulate them.
    runtime_dir: Option<std::path::PathBuf>,
}

/// Where the EAL keeps its runtime files for `prefix` (DPDK 22.11: /var/run/dpdk for root,
/// $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk otherwise).
fn runtime_dir(args: &[String]) -> Option<std::path::PathBuf> {
    let at = args.iter().position(|a| a == "--file-prefix")?;
    let prefix = args.get(at + 1)?;
    if prefix.is_empty() || prefix.contains('/') || prefix.starts_with('.') {
        return None;
    }
    let root = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false);
    let base = if root {
        std::path::PathBuf::from("/var/run/dpdk")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| "/tmp".into())
            .join("dpdk")
    };
    Some(base.join(prefix))
}

impl Eal {
    /// Initialises the EAL with `args` (argv[0] first). Only once per process.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::AlreadyInitialised);
        }
        let cargs: Vec<CString> = args
            .iter()
            .map(|a| {
                CString::new(a.as_str())
                    .map_err(|_| DpdkError::Eal(format!("argument {a:?} contains a NUL byte")))
            })
            .collect::<Result<_, _>>()?;
        let mut argv: Vec<*mut c_char> = cargs.iter().map(|c| c.as_ptr() as *mut c_char).collect();
        // SAFETY: argv points at NUL-terminated strings owned by `cargs`, which we keep
        // alive in the returned `Eal` because DPDK may keep pointers into argv.
        let ret = unsafe { dpdk_sys::rte_eal_init(argv.len() as c_int, argv.as_mut_ptr()) };
        if ret < 0 {
            return Err(DpdkError::Eal(super::last_error()));
        }
        Ok(Eal {
            _args: cargs,
            runtime_dir: runtime_dir(args),
        })
    }

    /// The lcore the calling thread runs on (the main lcore for the process's main thread).
    pub fn current_lcore(&self) -> LcoreId {
        // SAFETY: reads a thread-local set by the EAL.
        unsafe { dpdk_sys::rte_lcore_id() }
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: all lcores have been joined by the dataplane before the Eal is dropped
        // (it is the last thing `run` drops); cleanup releases hugepages and devices.
        unsafe {
            dpdk_sys::rte_eal_cleanup();
        }
        if let Some(d) = &self.runtime_dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The worker lcores given to the EAL (`-l`), in order, excluding the main one.
pub fn worker_lcores(_eal: &Eal) -> Vec<LcoreId> {
    let mut out = Vec::new();
    // SAFETY: iterates the EAL's lcore table, read-only after init.
    unsafe {
        let mut id = dpdk_sys::rte_get_next_lcore(u32::MAX, 1, 0);
        while id < dpdk_sys::RTE_MAX_LCORE {
            out.push(id);
            id = dpdk_sys::rte_get_next_lcore(id, 1, 0);
        }
    }
    out
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the Box<Job> leaked by `launch` for exactly this call.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into C: report it as a failed lcore instead.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

/// Runs `f` on worker lcore `lcore`. Join with [`wait_lcore`].
pub fn launch(
    _eal: &Eal,
    lcore: LcoreId,
    f: impl FnOnce() -> i32 + Send + 'static,
) -> Result<(), DpdkError> {
    let job: Box<Job> = Box::new(Box::new(f));
    let raw = Box::into_raw(job) as *mut c_void;
    // SAFETY: the trampoline takes ownership of `raw` exactly once when it runs; if the
    // launch fails it never runs and we take the box back.
    let ret = unsafe { dpdk_sys::rte_eal_remote_launch(Some(trampoline), raw, lcore) };
    if ret != 0 {
        // SAFETY: not launched, so we still own the box.
        drop(unsafe { Box::from_raw(raw as *mut Job) });
        return Err(DpdkError::Call {
            what: format!("launch on lcore {lcore}"),
            reason: super::errno_text(ret),
        });
    }
    Ok(())
}

/// Waits for the job on `lcore` and returns its exit code.
pub fn wait_lcore(_eal: &Eal, lcore: LcoreId) -> i32 {
    // SAFETY: blocks until the lcore is idle; no memory is shared through this call.
    unsafe { dpdk_sys::rte_eal_wait_lcore(lcore) }
}
