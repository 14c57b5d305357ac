//! A single write and the rule that decides it: the etcd transaction each [`Store`] write
//! method stands for, shared by every backend so they cannot disagree on the semantics.
//!
//! [`Store`]: crate::Store

use crate::{KeyValue, Result, Revision, StoreError, WatchEvent};

/// One create, update or delete, as queued for a backend.
#[derive(Debug)]
pub(crate) enum Write {
    Create {
        key: String,
        value: Vec<u8>,
    },
    Update {
        key: String,
        expected_mod_revision: Revision,
        value: Vec<u8>,
    },
    Delete {
        key: String,
        expected_mod_revision: Option<Revision>,
    },
}

impl Write {
    pub(crate) fn key(&self) -> &str {
        match self {
            Write::Create { key, .. } | Write::Update { key, .. } | Write::Delete { key, .. } => {
                key
            }
        }
    }

    /// Decides the write against the key's `current` value. On success the returned event is
    /// the whole effect: a `Put` stores `kv`, a `Delete` removes the key, and either is
    /// appended to the history at `revision`.
    pub(crate) fn apply(self, current: Option<KeyValue>, revision: Revision) -> Result<WatchEvent> {
        match (self, current) {
            (Write::Create { key, .. }, Some(_)) => Err(StoreError::AlreadyExists(key)),
            (Write::Create { key, value }, None) => Ok(WatchEvent::Put {
                kv: KeyValue {
                    key,
                    value,
                    create_revision: revision,
                    mod_revision: revision,
                },
                prev: None,
            }),
            (Write::Update { key, .. } | Write::Delete { key, .. }, None) => {
                Err(StoreError::NotFound(key))
            }
            (
                Write::Update {
                    key,
                    expected_mod_revision,
                    value,
                },
                Some(current),
            ) => {
                if current.mod_revision != expected_mod_revision {
                    return Err(StoreError::Conflict {
                        key,
                        current: Some(current),
                    });
                }
                Ok(WatchEvent::Put {
                    kv: KeyValue {
                        key,
                        value,
                        create_revision: current.create_revision,
                        mod_revision: revision,
                    },
                    prev: Some(current),
                })
            }
            (
                Write::Delete {
                    key,
                    expected_mod_revision,
                },
                Some(current),
            ) => {
                if expected_mod_revision.is_some_and(|expected| expected != current.mod_revision) {
                    return Err(StoreError::Conflict {
                        key,
                        current: Some(current),
                    });
                }
                Ok(WatchEvent::Delete {
                    key,
                    revision,
                    prev: current,
                })
            }
        }
    }
}

/// What the caller of a write gets back, derived from the write's event.
pub(crate) fn put_result(event: WatchEvent) -> Result<KeyValue> {
    match event {
        WatchEvent::Put { kv, .. } => Ok(kv),
        WatchEvent::Delete { key, .. } => Err(StoreError::Backend(format!(
            "write on key {key} produced a delete instead of a put"
        ))),
    }
}

/// What the caller of a delete gets back: (prev, delete revision).
pub(crate) fn delete_result(event: WatchEvent) -> Result<(KeyValue, Revision)> {
    match event {
        WatchEvent::Delete { revision, prev, .. } => Ok((prev, revision)),
        WatchEvent::Put { kv, .. } => Err(StoreError::Backend(format!(
            "delete of key {} produced a put",
            kv.key
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, create: Revision, modified: Revision) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: b"v".to_vec(),
            create_revision: create,
            mod_revision: modified,
        }
    }

    #[test]
    fn update_keeps_create_revision_and_reports_prev() {
        let write = Write::Update {
            key: "/k".into(),
            expected_mod_revision: 3,
            value: b"new".to_vec(),
        };
        let event = write
            .apply(Some(kv("/k", 2, 3)), 7)
            .expect("update applies");
        assert_eq!(
            event,
            WatchEvent::Put {
                kv: KeyValue {
                    key: "/k".into(),
                    value: b"new".to_vec(),
                    create_revision: 2,
                    mod_revision: 7
                },
                prev: Some(kv("/k", 2, 3)),
            }
        );
    }

    #[test]
    fn unconditional_delete_ignores_mod_revision() {
        let write = Write::Delete {
            key: "/k".into(),
            expected_mod_revision: None,
        };
        let event = write
            .apply(Some(kv("/k", 2, 3)), 9)
            .expect("delete applies");
        assert_eq!(event.revision(), 9);
        assert_eq!(delete_result(event).expect("delete").0, kv("/k", 2, 3));
    }

    #[test]
    fn conditional_delete_with_stale_revision_conflicts() {
        let write = Write::Delete {
            key: "/k".into(),
            expected_mod_revision: Some(2),
        };
        let err = write
            .apply(Some(kv("/k", 2, 3)), 9)
            .expect_err("stale delete");
        assert!(
            matches!(err, StoreError::Conflict { current: Some(c), .. } if c.mod_revision == 3)
        );
    }
}
