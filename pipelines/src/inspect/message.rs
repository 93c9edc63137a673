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
