//! A slab: values stored in fixed-size chunks, each known by a small index, with a free list so
//! that a freed index is the next one handed out.
//!
//! The idle sweep and the shutdown latch keep one entry per open connection. In a `HashMap`
//! keyed by a counter, 10 000 idle connections cost a table of 16 384 buckets (about 134 bytes
//! a connection for both, issue 19); here an entry costs its own size, and growing adds one
//! chunk instead of copying everything into a table twice as large.
//!
//! Not the `slab` crate (tokio-rs), which keeps one `Vec` that doubles: 16 384 entries for
//! 10 000 connections, and every entry moved at each doubling. Chunks never move, which also
//! lets the idle sweep share its chunks of marks with the connections under the same indices.

/// Entries per chunk: large enough that chunks are few, small enough that the last one's unused
/// room is little against thousands of connections.
pub(crate) const CHUNK: usize = 256;

/// Values of type `T`, each known by the index [`Slab::insert`] returned until it is removed.
pub(crate) struct Slab<T> {
    /// The storage; never shrinks, so an index stays valid until its entry is removed.
    chunks: Vec<Box<[Entry<T>]>>,
    /// The most recently freed index, the head of the free list (`NONE` when empty).
    free: u32,
}

/// The end of the free list.
const NONE: u32 = u32::MAX;

enum Entry<T> {
    Occupied(T),
    /// Free; the next free index.
    Vacant(u32),
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            chunks: Vec::new(),
            free: NONE,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value` and returns its index: a freed one if there is one, else a new one.
    /// Indices fit in a `u32`.
    pub(crate) fn insert(&mut self, value: T) -> usize {
        if self.free == NONE {
            self.grow();
        }
        let index = self.free as usize;
        let entry = self.entry_mut(index);
        let Entry::Vacant(next) = *entry else {
            unreachable!("the free list holds only vacant entries");
        };
        *entry = Entry::Occupied(value);
        self.free = next;
        index
    }

    /// Removes and returns the value at `index`; `None` if there is none (never inserted,
    /// already removed, or [`Slab::take`]n since).
    pub(crate) fn remove(&mut self, index: usize) -> Option<T> {
        let free = self.free;
        let entry = self.chunks.get_mut(index / CHUNK)?.get_mut(index % CHUNK)?;
        if matches!(entry, Entry::Vacant(_)) {
            return None;
        }
        let Entry::Occupied(value) = std::mem::replace(entry, Entry::Vacant(free)) else {
            unreachable!("checked just above");
        };
        self.free = index as u32;
        Some(value)
    }

    /// The value at `index`, if there is one.
    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        match self.chunks.get_mut(index / CHUNK)?.get_mut(index % CHUNK)? {
            Entry::Occupied(value) => Some(value),
            Entry::Vacant(_) => None,
        }
    }

    /// Keeps the values for which `keep(index, value)` is true and frees the others.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(usize, &mut T) -> bool) {
        for index in 0..self.chunks.len() * CHUNK {
            if let Entry::Occupied(value) = self.entry_mut(index)
                && !keep(index, value)
            {
                self.remove(index);
            }
        }
    }

    /// Every value, leaving the slab empty (and its memory freed).
    pub(crate) fn take(&mut self) -> impl Iterator<Item = T> {
        let chunks = std::mem::take(self).chunks;
        chunks
            .into_iter()
            .flat_map(|chunk| chunk.into_vec())
            .filter_map(|entry| match entry {
                Entry::Occupied(value) => Some(value),
                Entry::Vacant(_) => None,
            })
    }

    /// Values stored now (counted: only tests ask).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let occupied = |entry: &&Entry<T>| matches!(entry, Entry::Occupied(_));
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .filter(occupied)
            .count()
    }

    /// Room for this many values without growing.
    pub(crate) fn capacity(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    /// Adds a chunk and threads its entries onto the (empty) free list, lowest index first.
    fn grow(&mut self) {
        let start = self.capacity();
        assert!(
            start + CHUNK < NONE as usize,
            "a slab holds fewer than 2^32 entries"
        );
        let chunk = (start..start + CHUNK)
            .map(|index| match index + 1 {
                next if next < start + CHUNK => Entry::Vacant(next as u32),
                _ => Entry::Vacant(self.free),
            })
            .collect();
        self.chunks.push(chunk);
        self.free = start as u32;
    }

    fn entry_mut(&mut self, index: usize) -> &mut Entry<T> {
        &mut self.chunks[index / CHUNK][index % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_remove_and_reuse() {
        let mut slab = Slab::default();
        let (a, b) = (slab.insert("a"), slab.insert("b"));
        assert_ne!(a, b);
        assert_eq!((slab.len(), slab.capacity()), (2, CHUNK));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.remove(a), None, "removed twice");
        assert_eq!(slab.get_mut(a), None);
        assert_eq!(slab.insert("c"), a, "the freed index comes back first");
        assert_eq!(slab.get_mut(b), Some(&mut "b"));
        assert_eq!(slab.remove(CHUNK * 5), None, "never inserted");
        assert_eq!(slab.len(), 2);
    }

    #[test]
    fn grows_by_chunks_and_keeps_indices() {
        let mut slab = Slab::default();
        let keys: Vec<usize> = (0..CHUNK * 2 + 1).map(|i| slab.insert(i)).collect();
        assert_eq!(slab.capacity(), CHUNK * 3);
        let mut sorted = keys.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), keys.len(), "every index is distinct");
        for (i, key) in keys.iter().enumerate() {
            assert_eq!(slab.get_mut(*key), Some(&mut { i }));
        }
        // Everything freed and filled again: no growth.
        for key in &keys {
            slab.remove(*key);
        }
        assert_eq!(slab.len(), 0);
        for i in 0..keys.len() {
            slab.insert(i);
        }
        assert_eq!(slab.capacity(), CHUNK * 3);
    }

    #[test]
    fn retain_frees_what_it_drops() {
        let mut slab = Slab::default();
        for i in 0..10 {
            slab.insert(i);
        }
        let mut seen = Vec::new();
        slab.retain(|key, value| {
            seen.push(key);
            *value % 2 == 0
        });
        assert_eq!(
            seen,
            (0..10).collect::<Vec<_>>(),
            "every value visited once"
        );
        assert_eq!(slab.len(), 5);
        assert_eq!(slab.get_mut(1), None);
        assert_eq!(slab.get_mut(2), Some(&mut 2));
        let odd = slab.insert(11);
        assert!(odd % 2 == 1, "a freed (odd) index is reused: {odd}");
    }

    #[test]
    fn take_empties() {
        let mut slab = Slab::default();
        let key = slab.insert(1);
        slab.insert(2);
        slab.remove(key);
        assert_eq!(slab.take().collect::<Vec<_>>(), vec![2]);
        assert_eq!((slab.len(), slab.capacity()), (0, 0));
        assert_eq!(slab.remove(key), None, "indices from before are gone");
        assert_eq!(slab.insert(3), 0);
    }
}
