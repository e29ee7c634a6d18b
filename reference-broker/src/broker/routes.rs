//! Which sessions a PUBLISH can concern, without looking at every session.
//!
//! Routing used to try every subscription of every session against each
//! topic: with a thousand connected clients that is most of the cost of a
//! message. The index keeps, for sessions whose filters are all plain topic
//! names, a map from name to sessions; sessions with any wildcard or shared
//! filter are always looked at. It only narrows the sessions handed to
//! `publish_message`'s per-session rules (QoS, No Local, identifiers, shared
//! groups, ACL), which stay the one definition of who gets what.
//!
//! The index is rebuilt when first needed after a change: the core calls
//! [`Routes::invalidate`] wherever subscriptions are added or removed, or
//! sessions restored. A session that ends needs no call: the index may name
//! sessions that no longer exist or no longer match (they are skipped, or
//! found to match nothing), never leave out one that does. Debug builds
//! check that on every routing decision against a full scan, so a missed
//! invalidation fails the tests.
//!
//! Cost: a rebuild walks every subscription, so a publish that follows a
//! subscription change costs what every publish cost before; maintaining
//! the index incrementally would remove that.

use std::collections::HashMap;

use mqtt_codec::{topic, ByteString};

use super::{Session, SessionMap as Sessions};

#[derive(Debug, Default)]
pub(super) struct Routes {
    valid: bool,
    /// Plain filter → sessions subscribed to it (sessions with only plain filters).
    exact: HashMap<ByteString, Vec<ByteString>>,
    /// Sessions with a wildcard or shared filter: looked at for every topic.
    scan: Vec<ByteString>,
}

/// Whether `filter` can only ever match the topic name equal to it.
fn plain(filter: &str) -> bool {
    !topic::has_wildcard(filter) && topic::split_shared(filter).is_none()
}

impl Routes {
    /// Subscriptions changed: rebuild before the next use.
    pub(super) fn invalidate(&mut self) {
        self.valid = false;
    }

    /// Rebuilds the index if it is out of date; call before [`Routes::sessions`].
    pub(super) fn refresh(&mut self, sessions: &Sessions) {
        if self.valid {
            return;
        }
        self.exact.clear();
        self.scan.clear();
        for (cid, s) in sessions {
            if s.subscriptions.keys().all(|f| plain(f)) {
                for f in s.subscriptions.keys() {
                    self.exact.entry(f.clone()).or_default().push(cid.clone());
                }
            } else {
                self.scan.push(cid.clone());
            }
        }
        self.valid = true;
    }

    /// The sessions that may have a subscription matching `topic`: all of
    /// them when `all` (deliberate violations change the matching rules).
    pub(super) fn sessions<'a>(
        &'a self,
        sessions: &'a Sessions,
        topic: &str,
        all: bool,
    ) -> Candidates<'a> {
        if all {
            return Candidates::All(sessions.iter());
        }
        assert!(self.valid, "Routes::refresh first");
        #[cfg(debug_assertions)]
        self.check(sessions, topic);
        let exact = self.exact.get(topic).map_or(&[][..], Vec::as_slice);
        Candidates::Some {
            sessions,
            ids: self.scan.iter().chain(exact.iter()),
        }
    }

    /// No session left out of the candidates has a filter matching `topic`.
    #[cfg(debug_assertions)]
    fn check(&self, sessions: &Sessions, name: &str) {
        let exact = self.exact.get(name).map_or(&[][..], Vec::as_slice);
        for (cid, s) in sessions {
            if self.scan.contains(cid) || exact.contains(cid) {
                continue;
            }
            for f in s.subscriptions.keys() {
                let inner = match topic::split_shared(f) {
                    Some(Ok((_, inner))) => inner,
                    _ => f,
                };
                assert!(
                    !topic::matches(inner, name),
                    "route index is stale: session {cid:?} subscribes to {f:?}, which matches {name:?}"
                );
            }
        }
    }
}

pub(super) enum Candidates<'a> {
    All(std::collections::hash_map::Iter<'a, ByteString, Box<Session>>),
    Some {
        sessions: &'a Sessions,
        ids: std::iter::Chain<std::slice::Iter<'a, ByteString>, std::slice::Iter<'a, ByteString>>,
    },
}

impl<'a> Iterator for Candidates<'a> {
    type Item = (&'a ByteString, &'a Session);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Candidates::All(it) => it.next().map(|(k, v)| (k, &**v)),
            Candidates::Some { sessions, ids } => {
                for id in ids.by_ref() {
                    if let Some((k, v)) = sessions.get_key_value(id) {
                        return Some((k, &**v));
                    }
                }
                None
            }
        }
    }
}
