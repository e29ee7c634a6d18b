//! What `pub` and `sub` do alike around a session: show its trace, and turn
//! its errors into the project's exit statuses.

use std::io::Write;

use super::{CmdError, Status};
use crate::annotate::text::Tracer;
use crate::client::{ClientError, Session};

/// The trace of a session on standard error, when asked for.
pub struct Trace {
    tracer: Option<Tracer>,
}

impl Trace {
    pub fn new(args: &super::client_opts::ConnectArgs) -> Trace {
        Trace {
            tracer: args
                .trace
                .then(|| Tracer::new(args.protocol, args.trace_json)),
        }
    }

    /// Prints what the session exchanged since the last call.
    pub fn show(&mut self, session: &mut Session) {
        let log = session.take_log();
        if let Some(t) = &mut self.tracer {
            let mut err = std::io::stderr().lock();
            let _ = t.show(&log, &mut err);
            let _ = err.flush();
        }
    }
}

/// A session error as the command's outcome: the broker failed (exit 1,
/// the message on stderr), bad input (2), or unreachable (3).
pub fn outcome(e: ClientError) -> Result<Status, CmdError> {
    match e.exit_code() {
        2 => Err(CmdError::Usage(e.to_string())),
        3 => Err(CmdError::Unreachable(e.to_string())),
        _ => {
            eprintln!("error: {e}");
            Ok(Status::Fail)
        }
    }
}
