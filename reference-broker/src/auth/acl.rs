//! The topic ACL file (its format: the parent module's documentation):
//! parsed into rules per user, for clients without a user name and as
//! patterns, and the rules that apply to one client.

use std::collections::HashMap;

use mqtt_codec::topic;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Read,
    Write,
    ReadWrite,
}

impl Access {
    pub(super) fn read(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }
    pub(super) fn write(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

#[derive(Debug, Clone)]
struct Rule {
    access: Access,
    filter: String,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

impl Acl {
    /// Parses the file's text; errors read `path:line: what is wrong`.
    pub fn parse(path: &str, text: &str) -> Result<Acl, String> {
        let mut acl = Acl::default();
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |what: String| format!("{path}:{}: {what}", i + 1);
            let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match word {
                "user" => {
                    if rest.is_empty() {
                        return Err(at("`user` needs a user name".into()));
                    }
                    acl.users.entry(rest.to_string()).or_default();
                    user = Some(rest.to_string());
                }
                "topic" | "pattern" => {
                    let (access, filter) = match rest.split_once(char::is_whitespace) {
                        Some(("read", f)) => (Access::Read, f.trim()),
                        Some(("write", f)) => (Access::Write, f.trim()),
                        Some(("readwrite", f)) => (Access::ReadWrite, f.trim()),
                        // A filter with spaces needs its access word first.
                        Some((other, _)) => {
                            return Err(at(format!(
                                "unknown access {other:?}: use read, write or readwrite"
                            )));
                        }
                        _ => (Access::ReadWrite, rest),
                    };
                    if filter.is_empty() || matches!(filter, "read" | "write" | "readwrite") {
                        return Err(at(format!("`{word}` needs a topic filter")));
                    }
                    if let Err(e) = topic::validate_filter(filter, false) {
                        return Err(at(format!(
                            "{filter:?} is not a valid topic filter: {}",
                            e.describe()
                        )));
                    }
                    let rule = Rule {
                        access,
                        filter: filter.to_string(),
                    };
                    if word == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(u) = &user {
                        acl.users.entry(u.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => {
                    return Err(at(format!(
                        "unknown keyword {other:?}: use user, topic or pattern"
                    )))
                }
            }
        }
        Ok(acl)
    }

    /// Every rule that applies to the client, patterns substituted.
    pub(super) fn rules<'a>(
        &'a self,
        user: Option<&'a str>,
        client_id: &'a str,
    ) -> impl Iterator<Item = (Access, std::borrow::Cow<'a, str>)> + 'a {
        let own = match user {
            Some(u) => self.users.get(u).map(Vec::as_slice).unwrap_or(&[]),
            None => &self.anonymous[..],
        };
        let safe = |v: &str| !v.is_empty() && !v.contains(['/', '+', '#']);
        own.iter()
            .map(|r| (r.access, std::borrow::Cow::Borrowed(r.filter.as_str())))
            .chain(self.patterns.iter().filter_map(move |r| {
                let mut f = r.filter.clone();
                if f.contains("%c") {
                    if !safe(client_id) {
                        return None;
                    }
                    f = f.replace("%c", client_id);
                }
                if f.contains("%u") {
                    let u = user.filter(|u| safe(u))?;
                    f = f.replace("%u", u);
                }
                Some((r.access, std::borrow::Cow::Owned(f)))
            }))
    }
}

/// Whether some topic name matches both filters.
pub(super) fn overlaps(a: &str, b: &str) -> bool {
    let wild = |l: &str| l == "+" || l == "#";
    let (a1, b1) = (
        a.split('/').next().unwrap_or(""),
        b.split('/').next().unwrap_or(""),
    );
    // A leading wildcard never matches a `$` topic (MQTT-4.7.2-1).
    if (a1.starts_with('$') && wild(b1)) || (b1.starts_with('$') && wild(a1)) {
        return false;
    }
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (None, None) => return true,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap() {
        assert!(overlaps("#", "a/b"));
        assert!(overlaps("a/+", "+/b"));
        assert!(overlaps("a/#", "a"));
        assert!(!overlaps("a/b", "a/c"));
        assert!(!overlaps("a/b/c", "a/b"));
        assert!(!overlaps("#", "$SYS/x"));
        assert!(overlaps("$SYS/#", "$SYS/x"));
    }
}
