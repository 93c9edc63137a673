//! The stage loops the lcores run. Bursts of 32, no allocation per packet; every mbuf is
//! either handed on, sent, or dropped (which frees it) — ownership makes "exactly once"
//! a compile-time property.

use super::apply::PolicySlot;
use super::config::Overload;
use super::stats::StageCounters;
use crate::dpdk::{self, BURST, Burst, Mbuf, Mempool, Port, Ring};
use mimamori_pipelines::event::EventRecord;
use mimamori_pipelines::{Classifier, ForwardReason, Side, Verdict};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{SyncSender, TrySendError};

/// Wall-clock nanoseconds from the TSC, without a system call per burst.
#[derive(Clone, Copy)]
pub struct Clock {
    tsc0: u64,
    wall0_ns: u64,
    hz: u64,
}

impl Clock {
    pub fn new() -> Self {
        let wall0_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            tsc0: dpdk::tsc(),
            wall0_ns,
            hz: dpdk::tsc_hz().max(1),
        }
    }
    #[inline]
    pub fn now_ns(&self) -> u64 {
        let d = dpdk::tsc().wrapping_sub(self.tsc0);
        self.wall0_ns + (u128::from(d) * 1_000_000_000 / u128::from(self.hz)) as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// Everything a stage needs to know about the two ports.
#[derive(Clone)]
pub struct Ports {
    pub ports: Arc<[Port; 2]>,
}

impl Ports {
    /// Index 0 is the LAN port, 1 the WAN port.
    #[inline]
    pub fn index_of(&self, port_id: u16) -> usize {
        usize::from(self.ports[1].id() == port_id)
    }
    #[inline]
    pub fn side_of(&self, port_id: u16) -> Side {
        if self.index_of(port_id) == 0 {
            Side::Lan
        } else {
            Side::Wan
        }
    }
    pub fn id(&self, side: Side) -> u16 {
        self.ports[usize::from(side == Side::Wan)].id()
    }
}

/// The classify step shared by the run-to-completion loop and the pipeline workers.
pub struct ClassifyStage {
    pub cls: Classifier,
    pub pool: &'static Mempool,
    pub ports: Ports,
    pub events: Option<SyncSender<EventRecord>>,
    pub counters: Arc<StageCounters>,
    verdicts: [Verdict; BURST],
    next_publish_ns: u64,
    /// Where new snapshots come from, this stage's index there, and the generation it
    /// runs.
    policy: Option<(Arc<PolicySlot>, usize)>,
    generation: u64,
}

impl ClassifyStage {
    pub fn new(
        cls: Classifier,
        pool: &'static Mempool,
        ports: Ports,
        events: Option<SyncSender<EventRecord>>,
        counters: Arc<StageCounters>,
    ) -> Self {
        Self {
            cls,
            pool,
            ports,
            events,
            counters,
            verdicts: [Verdict::Forward(ForwardReason::NonIp); BURST],
            next_publish_ns: 0,
            policy: None,
            generation: 0,
        }
    }

    /// Follows `slot` for new snapshots as stage `index`, starting from `generation`.
    pub fn follow(mut self, slot: Arc<PolicySlot>, index: usize, generation: u64) -> Self {
        self.policy = Some((slot, index));
        self.generation = generation;
        self
    }

    /// Classifies `input` (each mbuf's port is where it arrived). Forwarded mbufs and the
    /// gateway's answers go to `out` with their port set to where they must leave;
    /// dropped ones are freed. `input` is left empty.
    pub fn run(&mut self, input: &mut Burst, now_ns: u64, mut out: impl FnMut(Mbuf)) {
        let n = input.len();
        if n > 0 {
            let mut frames: [&[u8]; BURST] = [&[]; BURST];
            let mut sides = [Side::Lan; BURST];
            for (i, (frame, side)) in frames.iter_mut().zip(sides.iter_mut()).enumerate().take(n) {
                if let Some(m) = input.get(i) {
                    *frame = m.data();
                    *side = self.ports.side_of(m.port());
                }
            }
            self.cls.process_burst(
                &frames[..n],
                now_ns,
                |i, _| sides[i],
                &mut self.verdicts[..n],
            );
            let mut dropped = 0;
            for (i, (verdict, side)) in self.verdicts.iter().zip(sides).enumerate().take(n) {
                let Some(mut m) = input.take(i) else { continue };
                if verdict.is_forward() {
                    m.set_port(self.ports.id(side.other()));
                    out(m);
                } else {
                    dropped += 1; // `m` is freed here
                }
            }
            StageCounters::add(&self.counters.dropped, dropped);
            input.clear();
            for (frame, side) in self.cls.injects.iter() {
                match self.pool.alloc_copy(frame) {
                    Some(mut m) => {
                        m.set_port(self.ports.id(side));
                        out(m);
                    }
                    None => StageCounters::add(&self.counters.inject_nombuf, 1),
                }
            }
            self.cls.injects.clear();
        }
        self.housekeeping(now_ns);
    }

    fn housekeeping(&mut self, now_ns: u64) {
        if let Some((slot, i)) = &self.policy
            && slot.published() != self.generation
        {
            // Between two bursts: the tables were built by the control thread.
            let u = slot.current();
            super::apply::follow(&mut self.cls, &u, *i);
            self.generation = u.generation;
            slot.mark_applied(*i, u.generation);
        }
        self.cls.tick(now_ns);
        match &self.events {
            Some(tx) => {
                for rec in self.cls.events.drain() {
                    if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                        tx.try_send(rec)
                    {
                        self.counters.events_dropped.fetch_add(1, Relaxed);
                    }
                }
            }
            None => self.cls.events.drain().for_each(drop),
        }
        if now_ns >= self.next_publish_ns {
            self.next_publish_ns = now_ns + 100_000_000;
            self.publish();
        }
    }

    /// Ends every flow (their flow records go out as `shutdown`) and publishes the counters.
    pub fn shutdown(&mut self, now_ns: u64) {
        self.cls.finish(now_ns);
        self.housekeeping(now_ns);
        self.publish_final();
    }

    /// Copies the classifier's counters where the control thread can read them.
    pub fn publish(&self) {
        if let Ok(mut r) = self.counters.report.try_lock() {
            *r = Some(self.cls.report());
        }
        if let (Some(ips), Ok(mut r)) = (self.cls.ips(), self.counters.ips.try_lock()) {
            *r = Some(ips.stats.clone());
        }
    }

    /// Like `publish`, but waits for the lock (at shutdown, so the last counts are kept).
    fn publish_final(&self) {
        if let Ok(mut r) = self.counters.report.lock() {
            *r = Some(self.cls.report());
        }
        if let (Some(ips), Ok(mut r)) = (self.cls.ips(), self.counters.ips.lock()) {
            *r = Some(ips.stats.clone());
        }
    }
}

fn send(port: &Port, out: &mut Burst, c: &StageCounters) {
    let (sent, unsent) = port.tx(0, out);
    StageCounters::add(&c.tx, sent);
    StageCounters::add(&c.tx_full, unsent);
}

/// Run-to-completion: RX from both ports, classify, TX, all on this lcore.
pub fn run_to_completion(mut stage: ClassifyStage, stop: Arc<AtomicBool>, clock: Clock) -> i32 {
    let ports = stage.ports.clone();
    let counters = stage.counters.clone();
    let mut rx = Burst::default();
    let mut out = [Burst::default(), Burst::default()];
    while !stop.load(Relaxed) {
        counters.heartbeat.fetch_add(1, Relaxed);
        let mut got = 0;
        for p in ports.ports.iter() {
            let n = p.rx(&mut rx);
            if n == 0 {
                continue;
            }
            got += n;
            StageCounters::add(&counters.rx, n);
            let now = clock.now_ns();
            stage.run(&mut rx, now, |m| {
                let o = ports.index_of(m.port());
                if let Err(m) = out[o].push(m) {
                    send(&ports.ports[o], &mut out[o], &counters);
                    let _ = out[o].push(m);
                }
            });
            for (port, burst) in ports.ports.iter().zip(out.iter_mut()) {
                send(port, burst, &counters);
            }
        }
        if got == 0 {
            stage.run(&mut rx, clock.now_ns(), |_| {});
        }
    }
    stage.shutdown(clock.now_ns());
    0
}

/// Pipeline RX stage: both ports, each flow to its worker's ring by symmetric hash.
pub fn rx_stage(
    ports: Ports,
    to_workers: Vec<Arc<Ring>>,
    to_tx: Arc<Ring>,
    overload: Overload,
    counters: Arc<StageCounters>,
    stop: Arc<AtomicBool>,
) -> i32 {
    let workers = to_workers.len().max(1);
    let mut rx = Burst::default();
    let mut shards: Vec<Burst> = (0..workers).map(|_| Burst::default()).collect();
    let mut bypass = Burst::default();
    while !stop.load(Relaxed) {
        counters.heartbeat.fetch_add(1, Relaxed);
        for p in ports.ports.iter() {
            let n = p.rx(&mut rx);
            if n == 0 {
                continue;
            }
            StageCounters::add(&counters.rx, n);
            for i in 0..n {
                if let Some(m) = rx.take(i) {
                    let w = mimamori_pipelines::packet::shard_hash(m.data()) as usize % workers;
                    let _ = shards[w].push(m); // a shard burst holds a whole RX burst
                }
            }
            rx.clear();
            for (w, shard) in shards.iter_mut().enumerate() {
                let done = to_workers[w].enqueue(shard);
                StageCounters::add(&counters.tx, done);
                let left = shard.len(); // what the ring did not take
                if left == 0 {
                    continue;
                }
                StageCounters::add(&counters.ring_full, left);
                match overload {
                    Overload::FailClosed => {
                        StageCounters::add(&counters.fail_closed, left);
                        shard.clear();
                    }
                    Overload::FailOpen => {
                        for i in 0..shard.len() {
                            if let Some(mut m) = shard.take(i) {
                                m.set_port(ports.ports[1 - ports.index_of(m.port())].id());
                                let _ = bypass.push(m);
                            }
                        }
                        shard.clear();
                        let sent = to_tx.enqueue(&mut bypass);
                        StageCounters::add(&counters.fail_open, sent);
                        StageCounters::add(&counters.ring_full, bypass.len());
                        bypass.clear();
                    }
                }
            }
        }
    }
    0
}

/// Pipeline classify worker: its ring in, the TX ring out.
pub fn worker_stage(
    mut stage: ClassifyStage,
    input: Arc<Ring>,
    to_tx: Arc<Ring>,
    stop: Arc<AtomicBool>,
    clock: Clock,
) -> i32 {
    let counters = stage.counters.clone();
    let mut inb = Burst::default();
    let mut outb = Burst::default();
    let flush = |outb: &mut Burst| {
        let done = to_tx.enqueue(outb);
        StageCounters::add(&counters.tx, done);
        StageCounters::add(&counters.ring_full, outb.len());
        outb.clear();
    };
    while !stop.load(Relaxed) {
        counters.heartbeat.fetch_add(1, Relaxed);
        let n = input.dequeue(&mut inb);
        StageCounters::add(&counters.rx, n);
        stage.run(&mut inb, clock.now_ns(), |m| {
            if let Err(m) = outb.push(m) {
                flush(&mut outb);
                let _ = outb.push(m);
            }
        });
        flush(&mut outb);
    }
    stage.shutdown(clock.now_ns());
    0
}

/// Pipeline TX stage: the TX ring out to whichever port each mbuf names.
pub fn tx_stage(
    ports: Ports,
    input: Arc<Ring>,
    counters: Arc<StageCounters>,
    stop: Arc<AtomicBool>,
) -> i32 {
    let mut inb = Burst::default();
    let mut out = [Burst::default(), Burst::default()];
    while !stop.load(Relaxed) {
        counters.heartbeat.fetch_add(1, Relaxed);
        let n = input.dequeue(&mut inb);
        if n == 0 {
            continue;
        }
        StageCounters::add(&counters.rx, n);
        for i in 0..n {
            if let Some(m) = inb.take(i) {
                let o = ports.index_of(m.port());
                let _ = out[o].push(m); // at most one burst's worth per port
            }
        }
        inb.clear();
        for (port, burst) in ports.ports.iter().zip(out.iter_mut()) {
            send(port, burst, &counters);
        }
    }
    0
}
