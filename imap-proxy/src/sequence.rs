//! Sequence sets (`1:3,7,9:*`) as the proxy's own folders resolve them: `*` is the largest
//! number present, and `n:*` includes it even when n is larger (RFC 9051 6.4.9).

use imap_codec::imap_types::sequence::{SeqOrUid, Sequence, SequenceSet};

fn value(v: &SeqOrUid, largest: u32) -> u32 {
    match v {
        SeqOrUid::Value(n) => n.get(),
        SeqOrUid::Asterisk => largest,
    }
}

/// Whether `n` is in the set (one test; for many, see [`ranges`]).
pub fn contains(set: &SequenceSet, n: u32, largest: u32) -> bool {
    set.0.as_ref().iter().any(|s| match s {
        Sequence::Single(v) => value(v, largest) == n,
        Sequence::Range(a, b) => {
            let (a, b) = (value(a, largest), value(b, largest));
            a.min(b) <= n && n <= a.max(b)
        }
    })
}

/// The set as sorted, disjoint, inclusive ranges, `*` being `largest`.
pub fn ranges(set: &SequenceSet, largest: u32) -> Vec<(u32, u32)> {
    let val = |x: &SeqOrUid| value(x, largest);
    let mut r: Vec<(u32, u32)> = set
        .0
        .as_ref()
        .iter()
        .map(|s| match s {
            Sequence::Single(x) => (val(x), val(x)),
            Sequence::Range(a, b) => (val(a).min(val(b)), val(a).max(val(b))),
        })
        .collect();
    r.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(r.len());
    for (lo, hi) in r {
        match out.last_mut() {
            Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// Whether `v` lies in ranges made by [`ranges`] (a binary search).
pub fn in_ranges(ranges: &[(u32, u32)], v: u32) -> bool {
    let i = ranges.partition_point(|&(_, hi)| hi < v);
    ranges.get(i).is_some_and(|&(lo, _)| lo <= v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str) -> SequenceSet {
        SequenceSet::try_from(text).unwrap()
    }

    #[test]
    fn sets_are_merged_sorted_ranges() {
        assert_eq!(
            ranges(&set("5,1:3,2,9:7"), 20),
            vec![(1, 3), (5, 5), (7, 9)]
        );
        // `n:*` includes the largest even when n is larger (RFC 9051 6.4.9).
        assert_eq!(ranges(&set("30:*"), 20), vec![(20, 30)]);
        assert_eq!(ranges(&set("*"), 7), vec![(7, 7)]);
        assert_eq!(ranges(&set("1:4294967295"), 3), vec![(1, 4294967295)]);
    }

    #[test]
    fn single_tests_agree_with_ranges() {
        let s = set("5,1:3,9:7");
        for v in 0..12 {
            assert_eq!(contains(&s, v, 20), in_ranges(&ranges(&s, 20), v), "{v}");
        }
    }
}
