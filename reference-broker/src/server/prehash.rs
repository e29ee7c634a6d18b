//! Password checks off the core's lock: PBKDF2 takes milliseconds by
//! design, and the core serves every connection under one lock. The read
//! loop hands CONNECTs here first; the key derivation runs on the blocking
//! pool and its outcome is remembered by [`crate::auth::Auth`], where the
//! core finds it a moment later for the cost of one HMAC.

use mqtt_codec::Packet;

use super::Shared;

impl Shared {
    /// Checks the passwords of the CONNECTs among `packets` ahead of the core.
    pub(super) async fn precheck_passwords(&self, packets: &[Packet]) {
        for p in packets {
            let Packet::Connect(c) = p else { continue };
            if c.password.is_none() {
                continue;
            }
            let auth = self.lock().broker.config().auth.clone();
            if !auth.checks_passwords() {
                continue;
            }
            let connect = c.clone();
            let _ = tokio::task::spawn_blocking(move || auth.precheck(&connect)).await;
        }
    }
}
