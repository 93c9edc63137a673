//! Pattern files and the languages they are written in.
//!
//! Today: the Suricata rule language parser (`rule`), with a loader that reports what it
//! loaded and what it skipped and why. The detection engine that runs the rules, URL
//! categories and malware definitions are still to come (issues #4 and #5).
#![forbid(unsafe_code)]

pub mod bundle;
pub mod category;
pub mod engine;
pub mod rule;

/// `print!` / `println!` for the project's command-line tools: to stdout, where a reader
/// that stopped early (`| head`) ends the program quietly instead of panicking.
#[macro_export]
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let mut o = std::io::stdout().lock();
        if let Err(e) = write!(o, $($t)*).and_then(|()| o.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("stdout: {e}");
            std::process::exit(1);
        }
    }};
}
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        $crate::out!($($t)*);
        $crate::out!("\n");
    }};
}
