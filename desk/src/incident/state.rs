//! The incident life cycle as an explicit state machine, with an audit entry per step.
