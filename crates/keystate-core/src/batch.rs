//! Batches: many writes or reads of one value-like state in one call, so a
//! binding crosses its boundary once per batch instead of once per entry.
//!
//! A write batch is all or nothing for what can be refused (unknown state,
//! wrong kind, sizes, key groups outside the store's range): every operation
//! is checked before the first one is applied.

use crate::error::Result;
use crate::hash::entry_hash;
use crate::mem::NO_TABLE;
use crate::state::StateKind;
use crate::store::{check_len, Key, Store, MAX_KEY_LEN, MAX_VALUE_LEN};

/// One write of a batch: a key (encoded bytes) and its new value; `None` deletes.
pub type Write<'a> = (&'a [u8], Option<&'a [u8]>);

impl Store {
    /// Applies `ops` in order to (key, `ns`) of value-like state `state`.
    /// Nothing is applied if any operation would be refused.
    pub fn write_many<'a, I>(&mut self, state: u32, ns: &[u8], ops: I) -> Result<usize>
    where
        I: Iterator<Item = Write<'a>> + Clone,
    {
        self.entry_of_kind(state, is_value_like, "value, reducing or aggregating")?;
        check_len("namespace", ns.len(), MAX_KEY_LEN)?;
        for (key, value) in ops.clone() {
            if let Some(v) = value {
                check_len("value", v.len(), MAX_VALUE_LEN)?;
            }
            Self::locate(&self.cfg, &self.current, Key::Bytes(key))?;
        }
        let mut n = 0;
        let mut ops = ops.peekable();
        let mut chunk: [Write<'a>; WARM_BATCH] = [(&[], None); WARM_BATCH];
        while ops.peek().is_some() {
            let mut len = 0;
            for op in ops.by_ref().take(WARM_BATCH) {
                chunk[len] = op;
                len += 1;
            }
            self.warm_keys(state, ns, chunk[..len].iter().map(|&(k, _)| k));
            for &(key, value) in &chunk[..len] {
                match value {
                    Some(v) => self.put(state, Key::Bytes(key), ns, v)?,
                    None => {
                        self.remove(state, Key::Bytes(key), ns)?;
                    }
                }
                n += 1;
            }
        }
        Ok(n)
    }

    /// Calls `found` with the value of each of `keys` in (key, `ns`) of
    /// value-like state `state`, live or at snapshot `at` (`None`: absent).
    pub fn read_many<'a>(
        &mut self,
        state: u32,
        ns: &[u8],
        keys: impl Iterator<Item = &'a [u8]>,
        at: Option<u64>,
        mut found: impl FnMut(Option<&[u8]>),
    ) -> Result<usize> {
        self.entry_of_kind(state, is_value_like, "value, reducing or aggregating")?;
        self.check_snapshot(at)?;
        let mut n = 0;
        let mut keys = keys.peekable();
        let mut chunk: [&[u8]; WARM_BATCH] = [&[]; WARM_BATCH];
        while keys.peek().is_some() {
            let mut len = 0;
            for k in keys.by_ref().take(WARM_BATCH) {
                chunk[len] = k;
                len += 1;
            }
            self.warm_keys(state, ns, chunk[..len].iter().copied());
            for &key in &chunk[..len] {
                found(self.get(state, Key::Bytes(key), ns, at)?);
                n += 1;
            }
        }
        Ok(n)
    }

    /// Warms the caches for the live entries of `keys` (see `Mem::warm`);
    /// keys that cannot be located are left to the lookup to refuse.
    fn warm_keys<'a>(&self, state: u32, ns: &[u8], keys: impl Iterator<Item = &'a [u8]>) {
        let Ok(e) = self.entry(state) else { return };
        let mut lookups = [(NO_TABLE, 0u32); WARM_BATCH];
        let mut len = 0;
        for key in keys.take(WARM_BATCH) {
            let Ok(loc) = Self::locate(&self.cfg, &self.current, Key::Bytes(key)) else { continue };
            let tid = e.parts[loc.part];
            if tid != NO_TABLE {
                lookups[len] = (tid, entry_hash(loc.hash, ns));
                len += 1;
            }
        }
        self.mem.warm(&lookups[..len]);
    }
}

/// Lookups warmed together: enough to overlap their cache misses, few enough
/// that the warmed lines are still cached when they are used.
const WARM_BATCH: usize = 16;

fn is_value_like(k: StateKind) -> bool {
    matches!(k, StateKind::Value | StateKind::Reducing | StateKind::Aggregating)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{KeyGroupRange, StoreConfig};
    use crate::{Error, StateDescriptor};

    fn store(range: Option<KeyGroupRange>) -> (Store, u32) {
        let mut s = Store::new(StoreConfig::new(128, range, [7; 16]).unwrap());
        let id = s.register_state(StateDescriptor::new("v", StateKind::Value, "bytes", "").unwrap()).unwrap();
        (s, id)
    }

    fn read(s: &mut Store, id: u32, keys: &[&[u8]], at: Option<u64>) -> Vec<Option<Vec<u8>>> {
        let mut out = Vec::new();
        s.read_many(id, b"", keys.iter().copied(), at, |v| out.push(v.map(<[u8]>::to_vec))).unwrap();
        out
    }

    #[test]
    fn writes_in_order_and_reads_back() {
        let (mut s, id) = store(None);
        let ops: Vec<Write<'_>> = vec![(b"a", Some(b"1")), (b"b", Some(b"2")), (b"a", None), (b"c", Some(b"3")), (b"c", Some(b"4"))];
        assert_eq!(s.write_many(id, b"", ops.iter().copied()).unwrap(), 5);
        assert_eq!(read(&mut s, id, &[b"a", b"b", b"c", b"z"], None), vec![None, Some(b"2".to_vec()), Some(b"4".to_vec()), None]);
        assert_eq!(s.get(id, Key::Bytes(b"b"), b"", None).unwrap(), Some(&b"2"[..]));
    }

    #[test]
    fn reads_at_a_snapshot() {
        let (mut s, id) = store(None);
        s.write_many(id, b"", [(&b"k"[..], Some(&b"old"[..]))].into_iter()).unwrap();
        let snap = s.snapshot();
        s.write_many(id, b"", [(&b"k"[..], Some(&b"new"[..]))].into_iter()).unwrap();
        assert_eq!(read(&mut s, id, &[b"k"], Some(snap)), vec![Some(b"old".to_vec())]);
        assert_eq!(read(&mut s, id, &[b"k"], None), vec![Some(b"new".to_vec())]);
    }

    #[test]
    fn refused_batch_changes_nothing() {
        // A store owning half the key groups: find one key inside and one outside.
        let (mut s, id) = store(Some(KeyGroupRange::new(0, 63)));
        let keys: Vec<Vec<u8>> = (0..1000u32).map(|i| format!("key-{i}").into_bytes()).collect();
        let inside = keys.iter().find(|k| s.key_group(k) <= 63).unwrap();
        let outside = keys.iter().find(|k| s.key_group(k) > 63).unwrap();
        s.put(id, Key::Bytes(inside), b"", b"before").unwrap();
        let ops: Vec<Write<'_>> = vec![(inside, Some(b"after")), (inside, None), (outside, Some(b"x"))];
        let err = s.write_many(id, b"", ops.iter().copied()).unwrap_err();
        assert!(matches!(err, Error::KeyGroupOutOfRange { .. }), "{err:?}");
        assert_eq!(s.get(id, Key::Bytes(inside), b"", None).unwrap(), Some(&b"before"[..]));

        let big = vec![0u8; MAX_KEY_LEN + 1];
        let ops: Vec<Write<'_>> = vec![(inside, None), (&big, Some(b"x"))];
        assert!(matches!(s.write_many(id, b"", ops.iter().copied()), Err(Error::TooLarge(_))));
        assert_eq!(s.get(id, Key::Bytes(inside), b"", None).unwrap(), Some(&b"before"[..]));
    }

    #[test]
    fn refuses_other_state_kinds() {
        let (mut s, _) = store(None);
        let list = s.register_state(StateDescriptor::new("l", StateKind::List, "bytes", "").unwrap()).unwrap();
        assert!(matches!(s.write_many(list, b"", std::iter::empty()), Err(Error::WrongStateKind { .. })));
        assert!(matches!(s.read_many(list, b"", std::iter::empty(), None, |_| ()), Err(Error::WrongStateKind { .. })));
    }
}
