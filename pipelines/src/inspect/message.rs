//! The per-message phases of one direction of a flow: what of the current app-layer
//! message (an HTTP request or response, a ClientHello, a server flight) has been
//! inspected. A head is inspected once, then once more with its body when the body
//! completes later; a message whose body is complete at first sight is inspected once.
//! The same shape as `flow::tcp`: an explicit enum and a pure transition function.

/// How far the inspection of the current message has gone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MessagePhase {
    /// Nothing of this message inspected yet.
    #[default]
    Fresh,
    /// Its head was inspected; the body is still coming.
    HeadInspected,
    /// Head and body were inspected: nothing more until the next message.
    Done,
}

/// What is due for inspection now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    /// The body is complete and is inspected with the head.
    pub body: bool,
    /// First inspection of this message (count it once).
    pub first: bool,
}

/// The next phase, and what to inspect, when the message has been seen with or without
/// its complete body. `None`: nothing new to inspect.
pub fn advance(phase: MessagePhase, body_complete: bool) -> (MessagePhase, Option<Due>) {
    use MessagePhase::*;
    match (phase, body_complete) {
        (Fresh, false) => (
            HeadInspected,
            Some(Due {
                body: false,
                first: true,
            }),
        ),
        (Fresh, true) => (
            Done,
            Some(Due {
                body: true,
                first: true,
            }),
        ),
        (HeadInspected, true) => (
            Done,
            Some(Due {
                body: true,
                first: false,
            }),
        ),
        (HeadInspected, false) | (Done, _) => (phase, None),
    }
}

/// Body bytes at which an incomplete body is first inspected (Suricata's minimal inspect
/// size for response bodies); it is inspected again each time it doubles, and when done.
pub const BODY_FIRST_INSPECT: usize = 40_000;

/// [`due`] for a body that may be inspected before it completes: once `body_len` reaches
/// [`BODY_FIRST_INSPECT`], then at each doubling (`inspected` remembers the length last
/// inspected), then complete. Alerts stay once per message, so a re-inspection repeats none.
pub fn due_progressive(
    phase: &mut MessagePhase,
    inspected: &mut usize,
    body_len: usize,
    complete: bool,
) -> Option<Due> {
    let grown = body_len >= BODY_FIRST_INSPECT.max(inspected.saturating_mul(2));
    match *phase {
        MessagePhase::Done => None,
        _ if complete => due(phase, true),
        MessagePhase::Fresh => {
            *phase = MessagePhase::HeadInspected;
            *inspected = 0;
            if grown {
                *inspected = body_len;
            }
            Some(Due {
                body: grown,
                first: true,
            })
        }
        MessagePhase::HeadInspected if grown => {
            *inspected = body_len;
            Some(Due {
                body: true,
                first: false,
            })
        }
        MessagePhase::HeadInspected => None,
    }
}

/// Advances `phase` in place; see [`advance`].
pub fn due(phase: &mut MessagePhase, body_complete: bool) -> Option<Due> {
    let (next, due) = advance(*phase, body_complete);
    *phase = next;
    due
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_then_its_body_are_each_inspected_once() {
        let mut p = MessagePhase::Fresh;
        assert_eq!(
            due(&mut p, false),
            Some(Due {
                body: false,
                first: true
            })
        );
        assert_eq!(
            due(&mut p, false),
            None,
            "more of the body, still incomplete"
        );
        assert_eq!(
            due(&mut p, true),
            Some(Due {
                body: true,
                first: false
            })
        );
        assert_eq!(due(&mut p, true), None);
        assert_eq!(p, MessagePhase::Done);
    }

    #[test]
    fn a_long_body_is_inspected_as_it_grows_then_whole() {
        let (mut p, mut n) = (MessagePhase::Fresh, 0);
        let d = |body, first| Some(Due { body, first });
        assert_eq!(due_progressive(&mut p, &mut n, 1000, false), d(false, true));
        assert_eq!(due_progressive(&mut p, &mut n, 39_999, false), None);
        assert_eq!(
            due_progressive(&mut p, &mut n, 40_000, false),
            d(true, false)
        );
        assert_eq!(due_progressive(&mut p, &mut n, 70_000, false), None);
        assert_eq!(
            due_progressive(&mut p, &mut n, 80_000, false),
            d(true, false)
        );
        assert_eq!(
            due_progressive(&mut p, &mut n, 90_000, true),
            d(true, false)
        );
        assert_eq!(due_progressive(&mut p, &mut n, 90_000, true), None);
    }

    #[test]
    fn a_complete_message_is_inspected_once() {
        let mut p = MessagePhase::Fresh;
        assert_eq!(
            due(&mut p, true),
            Some(Due {
                body: true,
                first: true
            })
        );
        assert_eq!(due(&mut p, true), None);
    }
}
