//! Repeated-byte fast patterns (`|00 00 00 00|`), found as runs rather than by the
//! multi-literal matcher, where they would match at every position of zero padding.

/// The longest run of `byte` in `hay` (lower-cased; any ASCII case matches), looking no
/// further once one of `enough` is found.
fn longest_run(hay: &[u8], byte: u8, enough: usize) -> usize {
    let up = byte.to_ascii_uppercase();
    let (mut at, mut best) = (0, 0);
    while let Some(p) = memchr::memchr2(byte, up, &hay[at..]) {
        let start = at + p;
        let run = hay[start..]
            .iter()
            .take_while(|c| c.eq_ignore_ascii_case(&byte))
            .count();
        best = best.max(run);
        if best >= enough {
            break;
        }
        at = start + run;
    }
    best
}

/// A buffer's repeated-byte patterns, grouped by byte: one scan per byte finds the longest
/// run, and every pattern of that byte no longer than it matches (before, each pattern
/// scanned the buffer on its own: a third of the inspection's time on ET Open).
#[derive(Default)]
pub(super) struct Runs(Vec<(u8, Vec<(usize, u32)>)>);

impl Runs {
    pub(super) fn add(&mut self, byte: u8, len: usize, pattern: u32) {
        match self.0.iter_mut().find(|(b, _)| *b == byte) {
            Some((_, v)) => v.push((len, pattern)),
            None => self.0.push((byte, vec![(len, pattern)])),
        }
    }
    pub(super) fn sorted(mut self) -> Runs {
        for (_, v) in &mut self.0 {
            v.sort_unstable();
        }
        self
    }
    /// Calls `hit` with the number of every pattern `hay` holds.
    pub(super) fn find(&self, hay: &[u8], mut hit: impl FnMut(u32)) {
        for (byte, lens) in &self.0 {
            let Some(&(enough, _)) = lens.last() else {
                continue;
            };
            let longest = longest_run(hay, *byte, enough);
            for &(_, p) in lens.iter().take_while(|(len, _)| *len <= longest) {
                hit(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Runs;

    #[test]
    fn one_scan_per_byte_finds_every_run_pattern_it_holds() {
        let mut r = Runs::default();
        r.add(0, 4, 1);
        r.add(0, 8, 2);
        r.add(b'a', 3, 3);
        r.add(0, 2, 4);
        let r = r.sorted();
        let found = |hay: &[u8]| {
            let mut v = Vec::new();
            r.find(hay, |p| v.push(p));
            v.sort_unstable();
            v
        };
        assert_eq!(
            found(b"x\0\0\0y\0\0\0\0\0z"),
            vec![1, 4],
            "a run of 5 holds 2 and 4, not 8"
        );
        assert_eq!(found(b"..AaA.."), vec![3], "any ASCII case");
        assert_eq!(found(&[0u8; 9]), vec![1, 2, 4]);
        assert!(found(b"").is_empty());
    }
}
