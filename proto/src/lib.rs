//! The wire protocol between the control plane and the gateway, shared by both ends.
//!
//! Two Unix sockets, one exchange per connection, text framing (a command line, then a
//! body whose length the line gives or that runs to the end of the connection):
//!
//! - [`control`]: the gateway's control socket (`mimamori-gw run --stats-socket`), spoken
//!   by `mimamori-gw apply/stats` and by the control plane;
//! - [`gateway`]: the control plane's gateway-facing socket (`mimamori-cp serve
//!   --cp-socket`), spoken by the gateway (current policy at start, event stream);
//! - [`call`]: the one client helper both ends use;
//! - [`policy`]: the typed policy snapshot the control plane hands to the gateway;
//! - [`stream`]: the acknowledged event stream (gateway → control plane, and the model
//!   for the box → desk uplink);
//! - [`instance`]: the lock file that keeps one process per socket;
//! - [`desk`]: the box's control plane ↔ the desk over HTTPS (enrolment, event batches,
//!   heartbeats).
//!
//! Every decoder reads at most a bounded number of bytes and answers hostile input with a
//! [`ProtoError`], never a panic.

pub mod control;
pub mod desk;
pub mod gateway;
pub mod instance;
pub mod policy;
pub mod stream;
mod wire;

pub use control::{Answer, Request};
pub use gateway::{CpAnswer, CpRequest, PatternFile};

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest policy text accepted over either socket.
pub const POLICY_MAX: usize = 16 << 20;
/// Longest command line (with its newline).
pub const LINE_MAX: usize = 256;
/// Longest JSON answer (stats, hosts) a client reads.
pub const ANSWER_MAX: usize = 16 << 20;
/// Longest EVE line on the event stream.
pub const EVENT_LINE_MAX: usize = 1 << 20;

/// What can go wrong reading or writing one message.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("the line is longer than {0} bytes")]
    LineTooLong(usize),
    #[error("the line is not UTF-8")]
    LineNotUtf8,
    #[error("unknown command {0:?}")]
    UnknownCommand(String),
    #[error("apply wants <version> <bytes> (at most {POLICY_MAX})")]
    BadApply,
    #[error("release wants <mac>")]
    BadRelease,
    #[error("patterns wants <kind> <sha256: 64 lowercase hex> <absolute path> on one line")]
    BadPatterns,
    #[error("the policy of {0} bytes is over the limit of {POLICY_MAX}")]
    PolicyTooLarge(usize),
    #[error("the policy ended after {got} of {want} bytes")]
    PolicyTruncated { got: usize, want: usize },
    #[error("the policy is not UTF-8")]
    PolicyNotUtf8,
    #[error("the answer is longer than {0} bytes")]
    AnswerTooLong(usize),
    #[error("closed without an answer")]
    NoAnswer,
    #[error("unexpected answer {0:?}")]
    UnexpectedAnswer(String),
    #[error("bad JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A request whose answer the requester knows how to read: one per socket.
pub trait Exchange {
    type Answer;
    fn encode<W: Write>(&self, w: &mut W) -> Result<(), ProtoError>;
    fn decode_answer<R: BufRead>(&self, r: &mut R) -> Result<Self::Answer, ProtoError>;
}

/// Why a [`call`] got no answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("{}: cannot connect: {source}", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Exchange { path: PathBuf, source: ProtoError },
}

/// Connects to `path`, sends `request` and reads its answer; `timeout` bounds each read
/// and write, so a stuck peer cannot hold the caller.
pub fn call<R: Exchange>(
    path: &Path,
    request: &R,
    timeout: Duration,
) -> Result<R::Answer, CallError> {
    let stream = connect(path, timeout)?;
    let exchange = |source: ProtoError| CallError::Exchange {
        path: path.to_path_buf(),
        source,
    };
    let mut w = &stream;
    request.encode(&mut w).map_err(exchange)?;
    w.flush().map_err(|e| exchange(e.into()))?;
    request
        .decode_answer(&mut BufReader::new(&stream))
        .map_err(exchange)
}

/// A connected stream with read and write timeouts set.
pub fn connect(path: &Path, timeout: Duration) -> Result<UnixStream, CallError> {
    let connect_err = |source| CallError::Connect {
        path: path.to_path_buf(),
        source,
    };
    let s = UnixStream::connect(path).map_err(connect_err)?;
    s.set_read_timeout(Some(timeout)).map_err(connect_err)?;
    s.set_write_timeout(Some(timeout)).map_err(connect_err)?;
    Ok(s)
}
