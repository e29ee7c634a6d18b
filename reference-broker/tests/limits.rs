//! `max_connections` follows the process's open-files limit. Its own test
//! binary: it lowers the limit of the whole process.

use reference_broker::config::{default_max_connections, FD_MARGIN};
use reference_broker::Config;
use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

#[test]
fn max_connections_defaults_from_the_open_files_limit() {
    let was = getrlimit(Resource::Nofile);
    let set = |current: u64| {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(current),
                maximum: was.maximum,
            },
        )
        .expect("lowering the soft limit is always allowed");
    };
    set(1000);
    assert_eq!(Config::default().max_connections, 1000 - FD_MARGIN as usize);
    set(30_000.min(was.maximum.unwrap_or(u64::MAX)));
    let want = 30_000.min(was.maximum.unwrap_or(u64::MAX)) - FD_MARGIN;
    assert_eq!(default_max_connections() as u64, want);
    // Below the margin, one connection still may be served.
    set(10);
    assert_eq!(default_max_connections(), 1);
    setrlimit(Resource::Nofile, was).expect("restore");
}
