//! Stream reassembly and defragmentation under arbitrary segmentation and hostile input.

use mimamori_pipelines::defrag::Defragmenter;
use mimamori_pipelines::stream::{HalfStream, Memcap, StreamLimits, StreamStats};
use proptest::prelude::*;

proptest! {
    /// However a message is cut and reordered (with duplicates), the receiver's bytes come out.
    #[test]
    fn any_segmentation_reassembles(
        data in proptest::collection::vec(any::<u8>(), 1..3000),
        cuts in proptest::collection::vec(0usize..3000, 0..12),
        order in proptest::collection::vec(any::<u32>(), 13),
        isn in any::<u32>(),
    ) {
        let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % data.len()).collect();
        bounds.push(0);
        bounds.push(data.len());
        bounds.sort_unstable();
        bounds.dedup();
        let mut segs: Vec<(usize, usize)> = bounds.windows(2).map(|w| (w[0], w[1])).collect();
        // Reorder, and send the first segment twice.
        let mut keyed: Vec<(u32, (usize, usize))> =
            segs.drain(..).enumerate().map(|(i, s)| (order[i % order.len()], s)).collect();
        keyed.sort_by_key(|k| k.0);
        let first = keyed[0].1;
        keyed.push((0, first));
        let mut h = HalfStream::default();
        h.syn(isn);
        let (limits, mut mem, mut st) =
            (StreamLimits { depth: 4096, skip_unheld: false }, Memcap::new(1 << 20), StreamStats::default());
        for (_, (a, b)) in keyed {
            h.add(isn.wrapping_add(1).wrapping_add(a as u32), &data[a..b], limits, &mut mem, &mut st);
        }
        // At most MAX_RANGES holes at any time; with 13 segments this may refuse some.
        if st.beyond_window == 0 {
            prop_assert_eq!(h.contiguous(), &data[..]);
        }
        prop_assert_eq!(st.overlap_diff, 0);
        h.release(&mut mem);
        prop_assert_eq!(mem.used, 0);
    }

    /// Arbitrary sequence numbers and lengths: no panic, the window stays within the depth.
    #[test]
    fn hostile_segments_stay_bounded(
        segs in proptest::collection::vec((any::<u32>(), 0usize..2000), 0..40),
    ) {
        let mut h = HalfStream::default();
        let (limits, mut mem, mut st) =
            (StreamLimits { depth: 8192, skip_unheld: false }, Memcap::new(1 << 16), StreamStats::default());
        let buf = vec![7u8; 2000];
        for (i, (seq, len)) in segs.into_iter().enumerate() {
            h.add(seq % 20_000, &buf[..len], limits, &mut mem, &mut st);
            h.inspected = h.contiguous().len();
            if i % 7 == 0 {
                h.next_message();
            }
            prop_assert!(h.contiguous().len() <= 8192);
            prop_assert!(mem.used <= mem.cap);
        }
    }

    /// Random bytes as IP fragments: no panic.
    #[test]
    fn defrag_survives_garbage(frames in proptest::collection::vec(
        proptest::collection::vec(any::<u8>(), 0..200), 0..30)) {
        let mut d = Defragmenter::new(16, 30, 1 << 16);
        let mut out = Vec::new();
        for (i, mut f) in frames.into_iter().enumerate() {
            // Make most of them IPv4 fragments so the parser gets past the header.
            if f.len() > 34 {
                f[12] = 0x08;
                f[13] = 0x00;
                f[14] = 0x45;
                f[20] |= 0x20;
            }
            if let Ok(m) = mimamori_pipelines::parse(&f) {
                d.add(&f, &m, i as u64, &mut out);
            }
        }
    }
}
