//! From a name (or none) to a verdict: the quarantine, the policy, ECH, the DNS-answer
//! cache and the address; and the answers a refusal sends.

use super::{
    Decision, Outcome, Seen, Via, WebAction, WebFilter, WebFlow, WebPhase, answer, answer_slot,
    block_flow, names,
};
use crate::classify::DropReason;
use crate::flow::Side;
use crate::reject;
use crate::stage::{Output, PacketCtx, StageVerdict};
use crate::web::ShortName;
use crate::wire::ip_proto;
use mimamori_signatures::category::{ADDRESS_NAME_MAX, address_name};

impl WebFilter {
    /// A first message without a name (`read`: it was read, complete or cut): judged by
    /// the name a DNS answer gave its address; an unreadable one by the policy's
    /// `unreadable` action.
    pub(super) fn nameless(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        read: bool,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let done = WebFlow {
            phase: WebPhase::Done,
            ..st
        };
        self.stats.no_name += 1;
        if st.quarantined {
            return (done, self.refuse_quarantined(pkt, out));
        }
        let mut v = self.by_answer(pkt, out);
        if v == StageVerdict::Pass && self.answer_name(pkt).is_none() {
            v = self.by_address(pkt, out);
        }
        if v != StageVerdict::Pass || !read {
            return (done, v);
        }
        self.stats.unreadable += 1;
        match self.rules.config.unreadable {
            WebAction::Allow => (done, StageVerdict::Pass),
            WebAction::Monitor => (done, StageVerdict::Pass),
            WebAction::Block => {
                self.stats.blocked += 1;
                (done, self.reset_both(pkt, DropReason::WebBlock, out))
            }
        }
    }

    /// Judges a name the client sent (the quarantine first, then the policy; an ECH
    /// hello's outer name, then the name looked up for the address).
    pub(super) fn named(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        seen: &Seen<'_>,
        out: &mut Output<'_>,
    ) -> StageVerdict {
        let m = pkt.meta;
        if st.quarantined {
            if self.rules.quarantine_allows(seen.name, &mut self.matches) {
                return StageVerdict::Pass;
            }
            self.stats.quarantine_refused += 1;
            let d = Decision {
                action: WebAction::Block,
                hit: None,
                exception: false,
                threat: true,
                callback: false,
            };
            self.refuse(
                pkt,
                seen.via,
                answer::PageKind::Quarantine,
                "quarantine",
                out,
            );
            let group = self.rules.group_of(m.src_mac, m.src);
            self.event(pkt, seen, Outcome::Quarantine, &d, group, out);
            return block_flow(m, DropReason::Quarantine);
        }
        if let Some(d) = self.judge(pkt, seen, Outcome::Blocked, out) {
            let cat_name = match d.hit {
                Some(h) => self.rules.category_name(h.category).to_string(),
                None => "site exception".to_string(),
            };
            self.refuse(pkt, seen.via, answer::PageKind::Blocked, &cat_name, out);
            return block_flow(m, DropReason::WebBlock);
        }
        if seen.ech {
            return self.ech(pkt, seen, out);
        }
        StageVerdict::Pass
    }

    /// An ECH hello whose outer name passed. Browsers send a GREASE ECH extension in
    /// every hello, with the real name outside, so the outer name is compared with the
    /// name the client looked up for this address: the same, or none known (a hosts
    /// file, encrypted DNS — blockable as a category), and the flow passes; a different
    /// one means the real name is hidden: the looked-up name is judged, then the
    /// policy's `ech` action applies.
    pub(super) fn ech(
        &mut self,
        pkt: &PacketCtx<'_>,
        seen: &Seen<'_>,
        out: &mut Output<'_>,
    ) -> StageVerdict {
        self.stats.ech += 1;
        match self.answer_name(pkt) {
            None => {
                self.stats.ech_unverified += 1;
                return StageVerdict::Pass;
            }
            Some(n) if n.as_str().eq_ignore_ascii_case(seen.name) => return StageVerdict::Pass,
            Some(_) => {}
        }
        self.stats.ech_hidden += 1;
        let v = self.by_answer(pkt, out);
        if v != StageVerdict::Pass {
            return v;
        }
        let action = self.rules.config.ech;
        if action == WebAction::Allow {
            return StageVerdict::Pass;
        }
        let d = Decision {
            action,
            hit: None,
            exception: false,
            threat: false,
            callback: false,
        };
        let group = self.rules.group_of(pkt.meta.src_mac, pkt.meta.src);
        let outcome = if action == WebAction::Block {
            self.stats.blocked += 1;
            Outcome::Blocked
        } else {
            self.stats.monitored += 1;
            Outcome::Monitored
        };
        self.event(pkt, seen, outcome, &d, group, out);
        if action == WebAction::Block {
            self.reset_both(pkt, DropReason::WebBlock, out)
        } else {
            StageVerdict::Pass
        }
    }

    /// Refuses a TCP flow with RSTs both ways (other protocols are just dropped).
    pub(super) fn reset_both(
        &mut self,
        pkt: &PacketCtx<'_>,
        reason: DropReason,
        out: &mut Output<'_>,
    ) -> StageVerdict {
        let (frame, m) = (pkt.frame, pkt.meta);
        if m.proto == ip_proto::TCP {
            out.injects
                .push_with(Side::Lan, |o| reject::build(frame, m, o));
            out.injects
                .push_with(Side::Wan, |o| answer::rst_to_server(m, o));
        }
        block_flow(m, reason)
    }

    pub(super) fn refuse_quarantined(
        &mut self,
        pkt: &PacketCtx<'_>,
        out: &mut Output<'_>,
    ) -> StageVerdict {
        self.stats.quarantine_refused += 1;
        self.reset_both(pkt, DropReason::Quarantine, out)
    }

    /// Answers a refused TCP request: the page over HTTP, a RST to the client otherwise;
    /// a RST to the server either way.
    pub(super) fn refuse(
        &mut self,
        pkt: &PacketCtx<'_>,
        via: Via,
        kind: answer::PageKind,
        category: &str,
        out: &mut Output<'_>,
    ) {
        let (frame, m) = (pkt.frame, pkt.meta);
        if via == Via::Http {
            let host = names::http_target(pkt.payload()).map_or("", |(h, _)| h);
            let n = answer::page(
                kind,
                host,
                category,
                &self.rules.config.desk_contact,
                &mut self.page,
            );
            let page = &self.page[..n];
            out.injects
                .push_with(Side::Lan, |o| answer::page_to_client(m, page, o));
        } else {
            out.injects
                .push_with(Side::Lan, |o| reject::build(frame, m, o));
        }
        out.injects
            .push_with(Side::Wan, |o| answer::rst_to_server(m, o));
    }

    /// A payload that was neither TLS nor HTTP: wait a few packets, then give up.
    pub(super) fn give_up_or_wait(
        &mut self,
        pkt: &PacketCtx<'_>,
        st: WebFlow,
        out: &mut Output<'_>,
    ) -> (WebFlow, StageVerdict) {
        let st = WebFlow {
            phase: st.phase.no_name(),
            ..st
        };
        if st.phase != WebPhase::Done {
            return (st, StageVerdict::Pass);
        }
        self.nameless(pkt, st, false, out)
    }

    /// Judges a flow nothing names by its destination address.
    pub(super) fn by_address(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> StageVerdict {
        let mut buf = [0u8; ADDRESS_NAME_MAX];
        let name = ShortName::new(address_name(pkt.meta.dst_ip(), &mut buf).as_bytes());
        let seen = Seen {
            via: Via::Address,
            name: name.as_str(),
            path: None,
            ech: false,
        };
        if self.judge(pkt, &seen, Outcome::Blocked, out).is_none() {
            return StageVerdict::Pass;
        }
        self.reset_both(pkt, DropReason::WebBlock, out)
    }

    /// The name a live DNS answer gave the flow's destination.
    pub(super) fn answer_name(&self, pkt: &PacketCtx<'_>) -> Option<ShortName> {
        let m = pkt.meta;
        let slot = self.answers[answer_slot(m.dst) & (self.answers.len() - 1)];
        (slot.addr == m.dst && slot.expires_ns > pkt.now_ns && !slot.name.is_empty())
            .then_some(slot.name)
    }

    /// Judges a flow with no name of its own by the name a DNS answer gave its address.
    pub(super) fn by_answer(&mut self, pkt: &PacketCtx<'_>, out: &mut Output<'_>) -> StageVerdict {
        let Some(name) = self.answer_name(pkt) else {
            return StageVerdict::Pass;
        };
        self.stats.named_by_answer += 1;
        let seen = Seen {
            via: Via::DnsAnswer,
            name: name.as_str(),
            path: None,
            ech: false,
        };
        if self.judge(pkt, &seen, Outcome::Blocked, out).is_none() {
            return StageVerdict::Pass;
        }
        self.reset_both(pkt, DropReason::WebBlock, out)
    }
}
