//! The part of Hyperscan/Vectorscan the signature prefilter uses: a block-mode database of
//! literals (each reported at most once per scan, optionally case-insensitive) and a
//! per-thread scratch. All unsafe code for it is here.
//!
//! Literals go through `hs_compile_multi` as `\xHH` escapes: the pure-literal API of
//! Vectorscan 5.4.9 refuses a literal that starts with a NUL byte as "empty".

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_ulonglong, c_void};
use std::ptr::{self, NonNull};

#[repr(C)]
struct CompileError {
    message: *mut c_char,
    expression: c_int,
}

#[repr(C)]
struct RawDatabase {
    _opaque: [u8; 0],
}

#[repr(C)]
struct RawScratch {
    _opaque: [u8; 0],
}

type MatchHandler =
    unsafe extern "C" fn(c_uint, c_ulonglong, c_ulonglong, c_uint, *mut c_void) -> c_int;

const HS_SUCCESS: c_int = 0;
const HS_FLAG_CASELESS: c_uint = 1;
const HS_FLAG_SINGLEMATCH: c_uint = 8;
const HS_MODE_BLOCK: c_uint = 1;

unsafe extern "C" {
    fn hs_compile_multi(
        expressions: *const *const c_char,
        flags: *const c_uint,
        ids: *const c_uint,
        elements: c_uint,
        mode: c_uint,
        platform: *const c_void,
        db: *mut *mut RawDatabase,
        error: *mut *mut CompileError,
    ) -> c_int;
    fn hs_free_compile_error(error: *mut CompileError) -> c_int;
    fn hs_free_database(db: *mut RawDatabase) -> c_int;
    fn hs_database_size(db: *const RawDatabase, size: *mut usize) -> c_int;
    fn hs_alloc_scratch(db: *const RawDatabase, scratch: *mut *mut RawScratch) -> c_int;
    fn hs_free_scratch(scratch: *mut RawScratch) -> c_int;
    fn hs_scan(
        db: *const RawDatabase,
        data: *const c_char,
        length: c_uint,
        flags: c_uint,
        scratch: *mut RawScratch,
        on_event: MatchHandler,
        context: *mut c_void,
    ) -> c_int;
}

/// A compiled set of literals; pattern `i` is reported as id `i`.
pub struct Database {
    raw: NonNull<RawDatabase>,
}

// SAFETY: a Hyperscan database is immutable after compilation and documented as safe to
// scan from many threads at once (each with its own scratch).
unsafe impl Send for Database {}
unsafe impl Sync for Database {}

impl Database {
    /// Compiles `literals` (none may be empty). Each is reported at most once per scan.
    pub fn literals(literals: &[&[u8]], caseless: bool) -> Result<Database, String> {
        if literals.is_empty() || literals.iter().any(|l| l.is_empty()) {
            return Err("no literals, or an empty one".into());
        }
        let texts: Vec<CString> = literals
            .iter()
            .map(|l| {
                let hex: String = l.iter().map(|b| format!("\\x{b:02x}")).collect();
                CString::new(hex).map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let ptrs: Vec<*const c_char> = texts.iter().map(|t| t.as_ptr()).collect();
        let flag = HS_FLAG_SINGLEMATCH | if caseless { HS_FLAG_CASELESS } else { 0 };
        let flags = vec![flag; texts.len()];
        let ids: Vec<c_uint> = (0..texts.len() as c_uint).collect();
        let n = c_uint::try_from(texts.len()).map_err(|_| "too many literals".to_string())?;
        let mut db = ptr::null_mut();
        let mut err = ptr::null_mut();
        // SAFETY: every pointer array holds `n` valid entries that outlive the call; the
        // expressions are NUL-terminated; `db` and `err` are out-parameters.
        let rc = unsafe {
            hs_compile_multi(
                ptrs.as_ptr(),
                flags.as_ptr(),
                ids.as_ptr(),
                n,
                HS_MODE_BLOCK,
                ptr::null(),
                &mut db,
                &mut err,
            )
        };
        if rc != HS_SUCCESS {
            let why = if err.is_null() {
                format!("hs_compile_multi failed ({rc})")
            } else {
                // SAFETY: on failure `err` points to a compile error with a C string
                // message, freed right after it is copied.
                unsafe {
                    let e = &*err;
                    let m = CStr::from_ptr(e.message).to_string_lossy().into_owned();
                    hs_free_compile_error(err);
                    format!("literal {}: {m}", e.expression)
                }
            };
            return Err(why);
        }
        NonNull::new(db)
            .map(|raw| Database { raw })
            .ok_or_else(|| "hs_compile_multi returned no database".into())
    }

    /// Bytes the compiled database takes.
    pub fn size(&self) -> usize {
        let mut n = 0;
        // SAFETY: `raw` is a live database; `n` is an out-parameter.
        unsafe { hs_database_size(self.raw.as_ptr(), &mut n) };
        n
    }

    /// Calls `on_match` with the id of every literal found in `data` (each once).
    /// `scratch` must have been fitted to this database ([`Scratch::fit`]).
    pub fn scan(
        &self,
        data: &[u8],
        scratch: &mut Scratch,
        on_match: &mut dyn FnMut(u32),
    ) -> Result<(), String> {
        let Some(s) = NonNull::new(scratch.raw) else {
            return Err("scratch not fitted".into());
        };
        let len = c_uint::try_from(data.len()).map_err(|_| "buffer over 4 GiB".to_string())?;
        let mut ctx: &mut dyn FnMut(u32) = on_match;
        // SAFETY: `raw` and `s` are live; `data` is valid for `len` bytes; the context is a
        // pointer to the `&mut dyn FnMut` above, which outlives the call, and `on_event`
        // casts it back to exactly that type.
        let rc = unsafe {
            hs_scan(
                self.raw.as_ptr(),
                data.as_ptr().cast(),
                len,
                0,
                s.as_ptr(),
                on_event,
                (&mut ctx as *mut &mut dyn FnMut(u32)).cast(),
            )
        };
        if rc == HS_SUCCESS {
            Ok(())
        } else {
            Err(format!("hs_scan failed ({rc})"))
        }
    }
}

unsafe extern "C" fn on_event(
    id: c_uint,
    _from: c_ulonglong,
    _to: c_ulonglong,
    _flags: c_uint,
    ctx: *mut c_void,
) -> c_int {
    // SAFETY: `ctx` is the `&mut &mut dyn FnMut(u32)` passed by `Database::scan`, alive
    // for the whole scan and not otherwise used during it.
    let f = unsafe { &mut *ctx.cast::<&mut dyn FnMut(u32)>() };
    // A panic must not unwind into C: stop the scan instead.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(id))) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // SAFETY: `raw` came from hs_compile_multi and is freed once, here.
        unsafe { hs_free_database(self.raw.as_ptr()) };
    }
}

/// Per-thread working memory for scans; one scratch can serve several databases.
pub struct Scratch {
    raw: *mut RawScratch,
}

// SAFETY: a scratch may move between threads; it is used by one thread at a time (`&mut`).
unsafe impl Send for Scratch {}

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            raw: ptr::null_mut(),
        }
    }
}

impl Scratch {
    /// Grows this scratch so it can scan `db` too (allocates; call once per database).
    pub fn fit(&mut self, db: &Database) -> Result<(), String> {
        // SAFETY: `db` is live; `raw` is null or a scratch from an earlier call, which
        // hs_alloc_scratch reallocates in place of.
        let rc = unsafe { hs_alloc_scratch(db.raw.as_ptr(), &mut self.raw) };
        if rc == HS_SUCCESS {
            Ok(())
        } else {
            Err(format!("hs_alloc_scratch failed ({rc})"))
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: `raw` came from hs_alloc_scratch and is freed once, here.
            unsafe { hs_free_scratch(self.raw) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_each_literal_once_with_nul_bytes_and_case() {
        let db = Database::literals(&[b"\0abc", b"GET ", b"zz"], true).unwrap();
        let mut s = Scratch::default();
        s.fit(&db).unwrap();
        let mut seen = Vec::new();
        db.scan(b"xx\0ABC get get \0abc", &mut s, &mut |id| seen.push(id))
            .unwrap();
        seen.sort_unstable();
        assert_eq!(seen, vec![0, 1]);
        assert!(db.size() > 0);
        assert!(Database::literals(&[b""], true).is_err());
        let exact = Database::literals(&[b"GET "], false).unwrap();
        let mut s2 = Scratch::default();
        s2.fit(&exact).unwrap();
        let mut n = 0;
        exact.scan(b"get ", &mut s2, &mut |_| n += 1).unwrap();
        assert_eq!(n, 0);
    }
}
