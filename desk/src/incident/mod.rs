//! Incidents: rules kept as data turn events into detections, detections fold into incidents.

pub mod rules;
pub mod state;
