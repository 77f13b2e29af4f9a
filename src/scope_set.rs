//! `ScopeSet`: a set of one API's scope ids, as a fixed-size bitset.

/// A set of scope ids of one API. Its size is fixed when it is made, from the
/// API's scope count, so membership is one shift and one mask.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct ScopeSet {
    words: Box<[u64]>,
}

impl ScopeSet {
    /// An empty set able to hold the ids `0..len`.
    pub(crate) fn with_len(len: usize) -> Self {
        ScopeSet {
            words: vec![0; len.div_ceil(64)].into_boxed_slice(),
        }
    }

    /// Adds `id`. Ids come from the set's API, so they are below its size;
    /// one beyond the last word is ignored rather than a panic.
    pub(crate) fn insert(&mut self, id: usize) {
        if let Some(word) = self.words.get_mut(id / 64) {
            *word |= 1 << (id % 64);
        }
    }

    /// Whether `id` is in the set.
    pub(crate) fn contains(&self, id: usize) -> bool {
        self.words
            .get(id / 64)
            .is_some_and(|word| word & (1 << (id % 64)) != 0)
    }

    /// Adds every id of `other`.
    pub(crate) fn union_with(&mut self, other: &ScopeSet) {
        for (word, theirs) in self.words.iter_mut().zip(other.words.iter()) {
            *word |= theirs;
        }
    }

    /// The ids in the set, in increasing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(n, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros() as usize;
                    rest &= rest - 1;
                    n * 64 + bit
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_exactly_what_was_inserted() {
        let mut set = ScopeSet::with_len(130);
        for id in [0, 63, 64, 129] {
            set.insert(id);
        }
        set.insert(192); // beyond the last word: ignored
        assert_eq!(set.iter().collect::<Vec<_>>(), [0, 63, 64, 129]);
        assert!(set.contains(63) && !set.contains(62) && !set.contains(192) && !set.contains(10_000));
    }

    #[test]
    fn union_adds_the_other_ids() {
        let mut a = ScopeSet::with_len(70);
        let mut b = ScopeSet::with_len(70);
        a.insert(1);
        b.insert(69);
        a.union_with(&b);
        assert_eq!(a.iter().collect::<Vec<_>>(), [1, 69]);
    }
}
