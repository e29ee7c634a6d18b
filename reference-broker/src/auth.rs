//! Authentication and authorisation: a password file of salted PBKDF2 hashes,
//! SCRAM-SHA-256 enhanced authentication (MQTT 5.0 section 4.12) and
//! mosquitto-like per-user topic ACLs.
//!
//! Everything here is pure: files are parsed from text that the caller read
//! at start-up, and the broker core calls the checks below while it handles
//! CONNECT, AUTH, PUBLISH, SUBSCRIBE and delivery. No I/O, no clock.
//!
//! # Password file
//!
//! One user per line, `#` starts a comment line, blank lines are ignored:
//!
//! ```text
//! alice:$pbkdf2-sha256$20000$c2FsdHNhbHRzYWx0$<32 bytes, base64>
//! ```
//!
//! The fields after the user name are the iteration count, the salt and
//! `PBKDF2-HMAC-SHA256(password, salt, iterations, 32)`, both in standard
//! base64 with padding. That value is exactly SCRAM's `SaltedPassword`
//! (RFC 5802 section 3), so one line serves both a plain user name / password
//! check and a SCRAM-SHA-256 exchange: at load the broker derives SCRAM's
//! `StoredKey` and `ServerKey` from it and keeps only those. A plain password
//! is checked by deriving the same keys from it and comparing `StoredKey` in
//! constant time. Note that the file is password-equivalent for SCRAM (as
//! SCRAM's own stored `SaltedPassword` would be): keep it readable by the
//! broker only. `reference-broker --hash-password USER` writes a line.
//!
//! The key derivation costs milliseconds on purpose. The tokio layer runs it
//! for each CONNECT on its blocking pool before the core sees the packet
//! ([`Auth::precheck`]); the outcome is remembered per user (an HMAC of the
//! password under a per-process key, never the password), so the core's own
//! check costs one HMAC. An unknown user costs the same derivation as a known
//! one.
//!
//! # ACL file
//!
//! ```text
//! # before any `user` line: rules for clients without a user name
//! topic read public/#
//! user alice
//! topic readwrite alice/#
//! topic read sensors/+/temperature
//! # patterns apply to every client, wherever they stand in the file
//! pattern write devices/%c/#
//! pattern read inbox/%u/#
//! ```
//!
//! The access word is optional (`readwrite` by default). With an ACL file,
//! everything not granted is refused. `%c` is the client identifier and `%u`
//! the user name; a pattern does not apply when the value is missing or holds
//! `/`, `+` or `#` (a client could otherwise widen its own rule).
//! A PUBLISH needs `write` on its topic. A SUBSCRIBE filter needs `read` on
//! some topic it can match (so `#` is granted to a client that may read
//! anything), and each message is checked again on delivery: a subscriber
//! never receives a topic it may not read, even through a wildcard (a shared
//! subscription's message goes to a member that may read it). A will topic
//! needs `write` when the client connects. Rules are not `deny` lines, and
//! `%c` / `%u` may stand anywhere in a filter.
//!
//! Refusals: CONNACK 0x86 / 0x04 for a wrong user name or password, 0x87 /
//! 0x05 for an anonymous client when those are not allowed and for a will
//! topic the client may not write; SUBACK 0x87 (5.0) / 0x80 (3.1.1); a 5.0
//! PUBLISH is answered PUBACK / PUBREC 0x87 (QoS 0: dropped), a 3.1.1 one is
//! acknowledged as usual and not forwarded (MQTT-3.3.5-2).
//!
//! With a password file, a session belongs to its user: another user who
//! connects with the same client identifier gets a new session.
//!
//! # Enhanced authentication (SCRAM-SHA-256)
//!
//! RFC 5802 / 7677 without channel binding, carried in Authentication Data:
//! client-first in CONNECT, server-first in AUTH 0x18, client-final in AUTH
//! 0x18, server-final (`v=…`) in the CONNACK 0x00. A wrong proof or an
//! unknown user (who gets a made-up salt, so the exchange does not tell)
//! ends in CONNACK 0x86; a malformed message in 0x87; another method in
//! 0x8C. Re-authentication (AUTH 0x19 … AUTH 0x00) runs the same exchange for
//! the same user; failing it ends the connection with DISCONNECT 0x87.
//!
//! Why one file of 1,000 lines: password files, SCRAM-SHA-256 and the AUTH
//! exchange state share the credentials and the one `Auth` that checks
//! them, a security boundary reviewed together; a fifth of the file is its
//! tests. The ACL file, which shares nothing with them but `Auth`'s checks,
//! is `auth/acl.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use mqtt_codec::{reason, topic, ByteString, Connect};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

mod acl;

use acl::overlaps;
pub use acl::Acl;

type HmacSha256 = Hmac<Sha256>;

/// The only enhanced authentication method offered.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";
/// Largest password or ACL file accepted (bytes).
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;
/// Iteration counts accepted from a password file: RFC 7677 asks for at
/// least 4096 for SCRAM; the upper bound keeps one login from stalling the
/// broker (the check runs inside the core).
pub const MIN_ITERATIONS: u32 = 1;
pub const MAX_ITERATIONS: u32 = 10_000_000;
/// Iterations `--hash-password` uses unless told otherwise.
pub const DEFAULT_ITERATIONS: u32 = 20_000;
/// Longest SCRAM message accepted (they are a few hundred bytes).
const MAX_SCRAM_MESSAGE: usize = 4096;

/// A user's credentials, as derived from one password file line.
#[derive(Clone)]
struct Credentials {
    iterations: u32,
    salt: Vec<u8>,
    stored_key: [u8; 32],
    server_key: [u8; 32],
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// SCRAM's `SaltedPassword`: PBKDF2-HMAC-SHA256 with a 32-byte output.
pub fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

impl Credentials {
    fn from_salted(salted: &[u8; 32], salt: Vec<u8>, iterations: u32) -> Credentials {
        let client_key = hmac(salted, &[b"Client Key"]);
        Credentials {
            iterations,
            salt,
            stored_key: Sha256::digest(client_key).into(),
            server_key: hmac(salted, &[b"Server Key"]),
        }
    }

    fn check_password(&self, password: &[u8]) -> bool {
        let salted = salted_password(password, &self.salt, self.iterations);
        let derived = Credentials::from_salted(&salted, Vec::new(), self.iterations);
        bool::from(derived.stored_key.ct_eq(&self.stored_key))
    }
}

/// The password file line for `user` and `password`.
pub fn hash_line(user: &str, password: &[u8], iterations: u32, salt: &[u8]) -> String {
    let hash = salted_password(password, salt, iterations);
    format!(
        "{user}:$pbkdf2-sha256${iterations}${}${}",
        B64.encode(salt),
        B64.encode(hash)
    )
}

/// Random bytes from the operating system (salts, the nonce secret).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b)
        .map_err(|e| format!("cannot get random bytes from the operating system: {e}"))?;
    Ok(b)
}

/// A parsed password file.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    users: HashMap<String, Credentials>,
}

impl PasswordFile {
    /// Parses the file's text; errors read `path:line: what is wrong`.
    pub fn parse(path: &str, text: &str) -> Result<PasswordFile, String> {
        let mut users = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |what: String| format!("{path}:{}: {what}", i + 1);
            let Some((user, hash)) = line.split_once(':') else {
                return Err(at(
                    "expected `user:$pbkdf2-sha256$iterations$salt$hash`".into()
                ));
            };
            if user.is_empty() {
                return Err(at("empty user name".into()));
            }
            let fields: Vec<&str> = hash.split('$').collect();
            let ["", "pbkdf2-sha256", iterations, salt, hash] = fields[..] else {
                return Err(at(format!(
                    "user {user:?}: the hash must read `$pbkdf2-sha256$iterations$salt$hash` (make one with `reference-broker --hash-password {user}`)"
                )));
            };
            let iterations: u32 = iterations
                .parse()
                .ok()
                .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(n))
                .ok_or_else(|| at(format!("user {user:?}: iterations must be a number from {MIN_ITERATIONS} to {MAX_ITERATIONS}, not {iterations:?}")))?;
            let salt = B64
                .decode(salt)
                .map_err(|e| at(format!("user {user:?}: the salt is not valid base64: {e}")))?;
            if salt.is_empty() || salt.len() > 64 {
                return Err(at(format!(
                    "user {user:?}: the salt must be 1 to 64 bytes, not {}",
                    salt.len()
                )));
            }
            let hash = B64
                .decode(hash)
                .map_err(|e| at(format!("user {user:?}: the hash is not valid base64: {e}")))?;
            let hash: [u8; 32] = hash.as_slice().try_into().map_err(|_| {
                at(format!(
                    "user {user:?}: the hash must be 32 bytes (PBKDF2-HMAC-SHA256), not {}",
                    hash.len()
                ))
            })?;
            if users
                .insert(
                    user.to_string(),
                    Credentials::from_salted(&hash, salt, iterations),
                )
                .is_some()
            {
                return Err(at(format!("user {user:?} appears twice")));
            }
        }
        Ok(PasswordFile { users })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Checks a password; an unknown user costs the same key derivation, so
    /// that timing does not tell which users exist.
    fn check(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(c) => c.check_password(password),
            None => {
                let _ = salted_password(password, b"no such user", DEFAULT_ITERATIONS);
                false
            }
        }
    }
}

struct Inner {
    passwords: Option<PasswordFile>,
    acl: Option<Acl>,
    allow_anonymous: bool,
    /// Key for server nonces and for the salts of unknown SCRAM users.
    secret: [u8; 32],
    nonces: AtomicU64,
    /// user → HMAC(secret, password) of the last password that passed the
    /// PBKDF2 check: a client that reconnects costs one HMAC, not a full
    /// key derivation inside the core. A wrong password always pays in full.
    verified: Mutex<HashMap<String, [u8; 32]>>,
    /// user → the same tag for the last password that failed: a client
    /// retrying a wrong password is refused without a key derivation.
    failed: Mutex<HashMap<String, [u8; 32]>>,
}

/// What the broker knows about users and their rights; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field(
                "users",
                &self.inner.passwords.as_ref().map(PasswordFile::len),
            )
            .field("acl", &self.inner.acl.is_some())
            .field("allow_anonymous", &self.inner.allow_anonymous)
            .finish()
    }
}

impl Default for Auth {
    /// Anyone may connect, with any user name, and do anything.
    fn default() -> Auth {
        Auth {
            inner: Arc::new(Inner {
                passwords: None,
                acl: None,
                allow_anonymous: true,
                secret: [0; 32],
                nonces: AtomicU64::new(0),
                verified: Mutex::default(),
                failed: Mutex::default(),
            }),
        }
    }
}

/// The outcome of CONNECT's authentication step.
#[derive(Debug)]
pub enum Start {
    /// Accepted as `user` (none: anonymous).
    Accept { user: Option<ByteString> },
    /// A SCRAM exchange has begun: send AUTH 0x18 with `data`.
    Continue { scram: Scram, data: Bytes },
    /// Refused with these CONNACK codes (5.0, 3.x).
    Refuse { v5: u8, v3: u8 },
}

/// A SCRAM exchange waiting for the client-final message.
#[derive(Debug, Clone)]
pub struct Scram {
    user: String,
    /// `client-first-message-bare`, `server-first-message`, the gs2 header.
    client_first_bare: String,
    server_first: String,
    gs2_header: String,
    nonce: String,
    /// False for a user that does not exist: the exchange runs on with a made-up
    /// salt (so that it does not tell which users exist) and fails at the end.
    known: bool,
}

impl Scram {
    pub fn user(&self) -> &str {
        &self.user
    }
}

/// A failed SCRAM step: the 5.0 reason code to answer with.
pub type ScramError = u8;

fn b64(data: &[u8]) -> String {
    B64.encode(data)
}

/// `saslname` unescaping (RFC 5802 section 5.1): `=2C` is `,`, `=3D` is `=`.
fn unescape_name(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(rest.get(..i)?);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = rest.get(i + 3..)?;
    }
    out.push_str(rest);
    Some(out)
}

impl Auth {
    pub fn new(
        passwords: Option<PasswordFile>,
        acl: Option<Acl>,
        allow_anonymous: bool,
    ) -> Result<Auth, String> {
        if !allow_anonymous && passwords.is_none() {
            return Err("allow_anonymous: false needs a password file (password_file / --password-file): without one nobody could connect".into());
        }
        Ok(Auth {
            inner: Arc::new(Inner {
                passwords,
                acl,
                allow_anonymous,
                secret: random_bytes()?,
                nonces: AtomicU64::new(0),
                verified: Mutex::default(),
                failed: Mutex::default(),
            }),
        })
    }

    /// Reads and parses the files (start-up only). Without a password file
    /// anonymous clients are allowed unless `allow_anonymous` says otherwise;
    /// with one they are refused unless it says so.
    pub fn load(
        password_file: Option<&str>,
        acl_file: Option<&str>,
        allow_anonymous: Option<bool>,
    ) -> Result<Auth, String> {
        let read = |path: &str| -> Result<String, String> {
            let meta = std::fs::metadata(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            if meta.len() > MAX_FILE_SIZE {
                return Err(format!(
                    "{path}: {} bytes is more than the {MAX_FILE_SIZE} allowed",
                    meta.len()
                ));
            }
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
        };
        let passwords = password_file
            .map(|p| PasswordFile::parse(p, &read(p)?))
            .transpose()?;
        let acl = acl_file.map(|p| Acl::parse(p, &read(p)?)).transpose()?;
        let allow = allow_anonymous.unwrap_or(passwords.is_none());
        Auth::new(passwords, acl, allow)
    }

    /// Whether user names are checked against a password file.
    pub fn checks_passwords(&self) -> bool {
        self.inner.passwords.is_some()
    }

    /// Whether anything is restricted (fast path for the default broker).
    pub fn has_acl(&self) -> bool {
        self.inner.acl.is_some()
    }

    /// The authentication step of CONNECT.
    pub fn start(&self, connect: &Connect) -> Start {
        let refuse = |v5, v3| Start::Refuse { v5, v3 };
        if connect.protocol.is_v5() {
            if let Some(method) = connect.properties.authentication_method() {
                // MQTT-4.12.0-1: a method we do not offer is refused with 0x8C.
                if method.as_ref() as &str != SCRAM_SHA_256 || self.inner.passwords.is_none() {
                    return refuse(
                        reason::BAD_AUTHENTICATION_METHOD,
                        reason::v3::NOT_AUTHORIZED,
                    );
                }
                let data = connect.properties.authentication_data().unwrap_or_default();
                return match self.scram_first(&data) {
                    Ok((scram, data)) => Start::Continue { scram, data },
                    Err(code) => refuse(code, reason::v3::NOT_AUTHORIZED),
                };
            }
        }
        match (&self.inner.passwords, &connect.username, &connect.password) {
            (_, None, None) | (None, None, Some(_)) => {
                if self.inner.allow_anonymous {
                    Start::Accept { user: None }
                } else {
                    refuse(reason::NOT_AUTHORIZED, reason::v3::NOT_AUTHORIZED)
                }
            }
            // No password file: a user name is an identity for the ACL, unchecked.
            (None, Some(u), _) => Start::Accept {
                user: Some(u.clone()),
            },
            (Some(file), Some(u), Some(pw)) if self.check_password(file, u, pw) => Start::Accept {
                user: Some(u.clone()),
            },
            (Some(_), ..) => refuse(
                reason::BAD_USER_NAME_OR_PASSWORD,
                reason::v3::BAD_USER_NAME_OR_PASSWORD,
            ),
        }
    }

    /// A user name / password check, remembered: the key derivation runs
    /// once per (user, password) tried, not on every CONNECT.
    fn check_password(&self, file: &PasswordFile, user: &str, password: &[u8]) -> bool {
        /// Entries kept per cache before it starts over.
        const MAX_CACHED: usize = 10_000;
        let tag = hmac(
            &self.inner.secret,
            &[b"password", user.as_bytes(), b"\0", password],
        );
        let hit = |cache: &Mutex<HashMap<String, [u8; 32]>>| {
            let cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.get(user).is_some_and(|t| bool::from(t.ct_eq(&tag)))
        };
        if hit(&self.inner.verified) {
            return true;
        }
        if hit(&self.inner.failed) {
            return false;
        }
        // No cache lock is held during the derivation.
        let ok = file.check(user, password);
        let cache = if ok {
            &self.inner.verified
        } else {
            &self.inner.failed
        };
        let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(user.to_string(), tag);
        ok
    }

    /// Runs the password check of a CONNECT ahead of the core, so that the
    /// core finds the result remembered: the tokio layer calls this on its
    /// blocking pool, outside the core's lock.
    pub fn precheck(&self, connect: &Connect) {
        if connect.protocol.is_v5() && connect.properties.authentication_method().is_some() {
            return;
        }
        if let (Some(file), Some(user), Some(password)) =
            (&self.inner.passwords, &connect.username, &connect.password)
        {
            let _ = self.check_password(file, user, password);
        }
    }

    /// The client-first message: returns the exchange state and the
    /// server-first message.
    pub fn scram_first(&self, data: &[u8]) -> Result<(Scram, Bytes), ScramError> {
        let malformed = reason::NOT_AUTHORIZED;
        if data.len() > MAX_SCRAM_MESSAGE {
            return Err(malformed);
        }
        let msg = std::str::from_utf8(data).map_err(|_| malformed)?;
        // gs2-header: channel binding flag, optional authzid, then the bare message.
        let (flag, rest) = msg.split_once(',').ok_or(malformed)?;
        if flag != "n" && flag != "y" {
            // `p=…`: channel binding, which MQTT over this broker does not offer.
            return Err(malformed);
        }
        let (authzid, bare) = rest.split_once(',').ok_or(malformed)?;
        let gs2_header = format!("{flag},{authzid},");
        let mut parts = bare.split(',');
        let user = parts
            .next()
            .and_then(|p| p.strip_prefix("n="))
            .and_then(unescape_name)
            .ok_or(malformed)?;
        let client_nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or(malformed)?;
        if user.is_empty()
            || client_nonce.is_empty()
            || !client_nonce
                .bytes()
                .all(|b| (0x21..=0x7e).contains(&b) && b != b',')
        {
            return Err(malformed);
        }
        if parts.any(|p| p.starts_with("m=")) {
            return Err(malformed);
        }
        if let Some(z) = authzid.strip_prefix("a=") {
            if unescape_name(z).as_deref() != Some(user.as_str()) {
                return Err(reason::NOT_AUTHORIZED);
            }
        } else if !authzid.is_empty() {
            return Err(malformed);
        }
        let n = self.inner.nonces.fetch_add(1, Ordering::Relaxed);
        let server_nonce = b64(&hmac(&self.inner.secret, &[b"nonce", &n.to_be_bytes()])[..18]);
        let nonce = format!("{client_nonce}{server_nonce}");
        let creds = self
            .inner
            .passwords
            .as_ref()
            .and_then(|f| f.users.get(&user));
        let (salt, iterations) = match creds {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (
                hmac(&self.inner.secret, &[b"salt", user.as_bytes()])[..16].to_vec(),
                // As for a user made with the defaults: no hint that it is unknown.
                DEFAULT_ITERATIONS,
            ),
        };
        let server_first = format!("r={nonce},s={},i={iterations}", b64(&salt));
        let scram = Scram {
            known: creds.is_some(),
            user,
            client_first_bare: bare.to_string(),
            server_first: server_first.clone(),
            gs2_header,
            nonce,
        };
        Ok((scram, Bytes::from(server_first)))
    }

    /// The client-final message: on success, the server-final message
    /// (`v=…`) to send back.
    pub fn scram_final(&self, scram: &Scram, data: &[u8]) -> Result<Bytes, ScramError> {
        let malformed = reason::NOT_AUTHORIZED;
        if data.len() > MAX_SCRAM_MESSAGE {
            return Err(malformed);
        }
        let msg = std::str::from_utf8(data).map_err(|_| malformed)?;
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or(malformed)?;
        let mut parts = without_proof.split(',');
        let binding = parts
            .next()
            .and_then(|p| p.strip_prefix("c="))
            .ok_or(malformed)?;
        if B64.decode(binding).ok().as_deref() != Some(scram.gs2_header.as_bytes()) {
            return Err(malformed);
        }
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or(malformed)?;
        if nonce != scram.nonce {
            return Err(malformed);
        }
        let proof = B64.decode(proof).map_err(|_| malformed)?;
        let creds = self
            .inner
            .passwords
            .as_ref()
            .and_then(|f| f.users.get(&scram.user))
            .filter(|_| scram.known);
        let Some(creds) = creds else {
            return Err(reason::BAD_USER_NAME_OR_PASSWORD);
        };
        let auth_message = format!(
            "{},{},{}",
            scram.client_first_bare, scram.server_first, without_proof
        );
        let signature = hmac(&creds.stored_key, &[auth_message.as_bytes()]);
        let proof: [u8; 32] = proof
            .as_slice()
            .try_into()
            .map_err(|_| reason::BAD_USER_NAME_OR_PASSWORD)?;
        let mut client_key = [0u8; 32];
        for (k, (p, s)) in client_key
            .iter_mut()
            .zip(proof.iter().zip(signature.iter()))
        {
            *k = p ^ s;
        }
        let stored: [u8; 32] = Sha256::digest(client_key).into();
        if !bool::from(stored.ct_eq(&creds.stored_key)) {
            return Err(reason::BAD_USER_NAME_OR_PASSWORD);
        }
        let server_signature = hmac(&creds.server_key, &[auth_message.as_bytes()]);
        Ok(Bytes::from(format!("v={}", b64(&server_signature))))
    }

    /// May this client publish to `topic`?
    pub fn may_publish(&self, user: Option<&str>, client_id: &str, name: &str) -> bool {
        let Some(acl) = &self.inner.acl else {
            return true;
        };
        acl.rules(user, client_id)
            .any(|(a, f)| a.write() && topic::matches(&f, name))
    }

    /// May this client receive a message on `topic`?
    pub fn may_read(&self, user: Option<&str>, client_id: &str, name: &str) -> bool {
        let Some(acl) = &self.inner.acl else {
            return true;
        };
        acl.rules(user, client_id)
            .any(|(a, f)| a.read() && topic::matches(&f, name))
    }

    /// May this client subscribe to `filter` (a shared subscription is judged
    /// by its inner filter)?
    pub fn may_subscribe(&self, user: Option<&str>, client_id: &str, filter: &str) -> bool {
        let Some(acl) = &self.inner.acl else {
            return true;
        };
        let inner = match topic::split_shared(filter) {
            Some(Ok((_, inner))) => inner,
            _ => filter,
        };
        acl.rules(user, client_id)
            .any(|(a, f)| a.read() && overlaps(&f, inner))
    }
}

/// The client side of SCRAM-SHA-256: the client-final message that answers
/// `server_first`, for `client_first` (the whole client-first message, gs2
/// header included) and `password`. Test clients use it (the harness's
/// scenarios compute their AUTH with it); the broker never does. An error
/// says what in the server-first message is wrong.
pub fn scram_client_final(
    client_first: &str,
    server_first: &str,
    password: &[u8],
) -> Result<String, String> {
    // gs2-header: the channel binding flag and the authzid, each ending in ','.
    let mut at = client_first.splitn(3, ',');
    let (Some(flag), Some(authzid), Some(bare)) = (at.next(), at.next(), at.next()) else {
        return Err(format!(
            "the client-first message {client_first:?} has no gs2 header (`n,,` then `n=user,r=nonce`)"
        ));
    };
    let gs2_header = format!("{flag},{authzid},");
    let client_nonce = bare
        .split(',')
        .find_map(|p| p.strip_prefix("r="))
        .ok_or_else(|| format!("the client-first message {client_first:?} has no nonce `r=`"))?;
    let field = |name: &str| {
        server_first
            .split(',')
            .find_map(|p| p.strip_prefix(name))
            .ok_or_else(|| format!("the server-first message {server_first:?} has no `{name}`"))
    };
    let nonce = field("r=")?;
    if !nonce.starts_with(client_nonce) || nonce.len() == client_nonce.len() {
        return Err(format!(
            "the server-first nonce {nonce:?} does not extend the client's {client_nonce:?}"
        ));
    }
    let salt = B64
        .decode(field("s=")?)
        .map_err(|e| format!("the server-first salt is not base64: {e}"))?;
    let iterations: u32 = field("i=")?
        .parse()
        .ok()
        .filter(|n| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(n))
        .ok_or_else(|| {
            format!("the server-first iteration count is not a number from {MIN_ITERATIONS} to {MAX_ITERATIONS}")
        })?;
    let salted = salted_password(password, &salt, iterations);
    let client_key = hmac(&salted, &[b"Client Key"]);
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    let without_proof = format!("c={},r={nonce}", b64(gs2_header.as_bytes()));
    let auth_message = format!("{bare},{server_first},{without_proof}");
    let signature = hmac(&stored_key, &[auth_message.as_bytes()]);
    let mut proof = [0u8; 32];
    for (p, (k, s)) in proof
        .iter_mut()
        .zip(client_key.iter().zip(signature.iter()))
    {
        *p = k ^ s;
    }
    Ok(format!("{without_proof},p={}", b64(&proof)))
}

/// Where a connection stands in authentication (kept in the core's
/// per-connection state). All but a plain connection's user is boxed, so
/// that every connection does not carry the room for an exchange (40
/// bytes, against 104 inline).
#[derive(Debug, Default)]
pub enum ConnAuth {
    /// No CONNECT yet.
    #[default]
    Start,
    /// CONNECT held back while a SCRAM exchange runs.
    Connecting {
        connect: Box<Connect>,
        scram: Box<Scram>,
    },
    /// The exchange succeeded: CONNECT is being processed; the server-final
    /// message goes into CONNACK.
    Accepted(Box<Accepted>),
    /// Connected as `user`, without enhanced authentication.
    Plain { user: Option<ByteString> },
    /// Connected with enhanced authentication.
    Enhanced(Box<Enhanced>),
}

#[derive(Debug)]
pub struct Accepted {
    pub user: Option<ByteString>,
    pub method: Option<ByteString>,
    pub data: Option<Bytes>,
}

/// A connection authenticated with `method`; `reauth` while a
/// re-authentication runs.
#[derive(Debug)]
pub struct Enhanced {
    pub user: Option<ByteString>,
    pub method: ByteString,
    pub reauth: Option<Box<Scram>>,
}

impl ConnAuth {
    pub fn user(&self) -> Option<&ByteString> {
        match self {
            ConnAuth::Accepted(a) => a.user.as_ref(),
            ConnAuth::Plain { user } => user.as_ref(),
            ConnAuth::Enhanced(e) => e.user.as_ref(),
            _ => None,
        }
    }

    /// Connected as `user`, with `method` if enhanced authentication was used.
    pub fn done(user: Option<ByteString>, method: Option<ByteString>) -> ConnAuth {
        match method {
            Some(method) => ConnAuth::Enhanced(Box::new(Enhanced {
                user,
                method,
                reauth: None,
            })),
            None => ConnAuth::Plain { user },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example exchange of RFC 7677 section 3, with its nonces.
    #[test]
    fn rfc7677_test_vector() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("base64");
        let line = hash_line("user", b"pencil", 4096, &salt);
        let auth = Auth::new(
            Some(PasswordFile::parse("pw", &line).expect("parses")),
            None,
            false,
        )
        .expect("auth");
        let (mut scram, server_first) = auth
            .scram_first(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO")
            .expect("client-first");
        assert!(std::str::from_utf8(&server_first)
            .expect("UTF-8")
            .starts_with("r=rOprNGfwEbeRWgbNEkqO"));
        // Replay the RFC's server-first message (its server nonce).
        scram.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        scram.server_first = format!("r={},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", scram.nonce);
        let client_final = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let server_final = auth
            .scram_final(&scram, client_final)
            .expect("the RFC's proof is accepted");
        assert_eq!(
            &server_final[..],
            b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut bad = client_final.to_vec();
        let n = bad.len();
        bad[n - 3] ^= 1;
        assert_eq!(
            auth.scram_final(&scram, &bad),
            Err(reason::BAD_USER_NAME_OR_PASSWORD)
        );
    }

    /// The client side computes the RFC's client-final message, and a
    /// proof this broker accepts for a server-first message of its own.
    #[test]
    fn client_final_matches_the_rfc_and_the_broker() {
        let rfc = scram_client_final(
            "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            b"pencil",
        );
        assert_eq!(
            rfc.as_deref(),
            Ok("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        );
        let line = hash_line("bob", b"secret", 16, b"saltsalt");
        let auth = Auth::new(
            Some(PasswordFile::parse("pw", &line).expect("parses")),
            None,
            false,
        )
        .expect("auth");
        let first = "n,,n=bob,r=fixednonce";
        let (scram, server_first) = auth.scram_first(first.as_bytes()).expect("client-first");
        let server_first = std::str::from_utf8(&server_first).expect("UTF-8");
        let good = scram_client_final(first, server_first, b"secret").expect("a client-final");
        assert!(auth.scram_final(&scram, good.as_bytes()).is_ok(), "{good}");
        let bad = scram_client_final(first, server_first, b"Secret").expect("a client-final");
        assert_eq!(
            auth.scram_final(&scram, bad.as_bytes()),
            Err(reason::BAD_USER_NAME_OR_PASSWORD)
        );
        // What a server-first message must hold.
        for wrong in [
            "s=c2FsdA==,i=16",
            "r=othernonce,s=c2FsdA==,i=16",
            "r=fixednonce,s=c2FsdA==,i=16",
            "r=fixednonceX,s=*,i=16",
            "r=fixednonceX,s=c2FsdA==,i=0",
        ] {
            assert!(scram_client_final(first, wrong, b"x").is_err(), "{wrong}");
        }
        assert!(scram_client_final("n=bob,r=x", server_first, b"x").is_err());
    }

    #[test]
    fn password_checks_are_remembered_not_trusted() {
        let file =
            PasswordFile::parse("pw", &hash_line("bob", b"secret", 10, b"salt")).expect("parses");
        let auth = Auth::new(Some(file), None, false).expect("auth");
        let login = |pw: &'static [u8]| Connect {
            username: Some("bob".into()),
            password: Some(Bytes::from_static(pw)),
            ..Connect::new(mqtt_codec::Protocol::V5, "c")
        };
        let cached = |m: &Mutex<HashMap<String, [u8; 32]>>| m.lock().map(|v| v.len()).unwrap_or(0);
        // What the tokio layer does first, off the core's lock.
        auth.precheck(&login(b"secret"));
        auth.precheck(&login(b"Secret"));
        assert_eq!(
            (cached(&auth.inner.verified), cached(&auth.inner.failed)),
            (1, 1)
        );
        for _ in 0..2 {
            assert!(matches!(
                auth.start(&login(b"secret")),
                Start::Accept { .. }
            ));
            assert!(matches!(
                auth.start(&login(b"Secret")),
                Start::Refuse { v5: 0x86, v3: 0x04 }
            ));
            assert!(matches!(
                auth.start(&login(b"other")),
                Start::Refuse { v5: 0x86, v3: 0x04 }
            ));
        }
        // An unknown user is refused like a wrong password.
        let mut eve = login(b"secret");
        eve.username = Some("eve".into());
        assert!(matches!(
            auth.start(&eve),
            Start::Refuse { v5: 0x86, v3: 0x04 }
        ));
    }

    #[test]
    fn saslname() {
        assert_eq!(unescape_name("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape_name("a=2"), None);
        assert_eq!(unescape_name("a=41"), None);
    }

    #[test]
    fn password_round_trip() {
        let line = hash_line("bob", b"secret", 10, b"saltsalt");
        let f = PasswordFile::parse("pw", &line).expect("parses");
        assert!(f.check("bob", b"secret"));
        assert!(!f.check("bob", b"Secret"));
        assert!(!f.check("eve", b"secret"));
    }

    #[test]
    fn password_file_errors_name_the_line() {
        let e = PasswordFile::parse("pw", "# c\n\nbob:plain\n").unwrap_err();
        assert!(e.starts_with("pw:3: "), "{e}");
        let e = PasswordFile::parse("pw", "bob:$pbkdf2-sha256$0$c2FsdA==$AA==\n").unwrap_err();
        assert!(e.contains("iterations"), "{e}");
        let e = PasswordFile::parse("pw", "bob:$pbkdf2-sha256$10$c2FsdA==$AA==\n").unwrap_err();
        assert!(e.contains("32 bytes"), "{e}");
        let line = hash_line("bob", b"x", 10, b"salt");
        let e = PasswordFile::parse("pw", &format!("{line}\n{line}\n")).unwrap_err();
        assert!(e.starts_with("pw:2: ") && e.contains("twice"), "{e}");
    }

    #[test]
    fn acl_rules() {
        let acl = Acl::parse(
            "acl",
            "topic read public/#\nuser alice\ntopic readwrite alice/#\ntopic write in\npattern read dev/%c/#\npattern users/%u\n",
        )
        .expect("parses");
        let auth = Auth::new(None, Some(acl), true).expect("auth");
        assert!(auth.may_read(None, "c", "public/x"));
        assert!(!auth.may_publish(None, "c", "public/x"));
        assert!(auth.may_publish(Some("alice"), "c", "alice/x"));
        assert!(auth.may_publish(Some("alice"), "c", "in"));
        assert!(!auth.may_read(Some("alice"), "c", "in"));
        assert!(auth.may_read(Some("bob"), "c1", "dev/c1/t"));
        assert!(!auth.may_read(Some("bob"), "c1", "dev/c2/t"));
        assert!(
            !auth.may_read(Some("bob"), "a/b", "dev/a/b/t"),
            "a client id with / must not widen a pattern"
        );
        assert!(auth.may_publish(Some("bob"), "c", "users/bob"));
        assert!(
            !auth.may_publish(None, "c", "users/"),
            "%u does not apply without a user"
        );
        assert!(auth.may_subscribe(Some("alice"), "c", "#"));
        assert!(auth.may_subscribe(Some("alice"), "c", "$share/g/alice/+"));
        assert!(!auth.may_subscribe(Some("alice"), "c", "bob/#"));
        let e = Acl::parse("acl", "user a\ntopic read a/#/b\n").unwrap_err();
        assert!(e.starts_with("acl:2: "), "{e}");
        let e = Acl::parse("acl", "topik read a\n").unwrap_err();
        assert!(e.starts_with("acl:1: ") && e.contains("topik"), "{e}");
    }
}
