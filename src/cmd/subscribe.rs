//! `mqtt-harness sub`: subscribe and print messages, with mosquitto_sub's
//! options.
//!
//! Exit status: 0 it stopped as asked (`-C N` messages received, `-W`
//! seconds passed without `-C`, or Ctrl-C); 1 the broker refused the
//! connection or a subscription, closed the connection, did not answer in
//! time or broke the protocol, or `-W` passed before the `-C` count was
//! reached; 2 bad options; 3 the broker could not be reached.

use std::io::{Read, Write};
use std::time::Duration;

use mqtt_codec::props::PropertyContext;
use mqtt_codec::{Property, Subscription, SubscriptionOptions};
use tokio::time::Instant;

use super::client_opts::{self, ConnectArgs};
use super::client_run::{outcome, Trace};
use super::sub_format;
use super::{CmdError, Status};
use crate::client::Session;

#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
#[command(
    after_help = "Exit status: 0 stopped as asked (-C reached, -W passed without -C, Ctrl-C); 1 the broker refused, closed, timed out or broke the protocol, or -W passed before -C was reached; 2 bad options; 3 the broker could not be reached."
)]
pub struct Args {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic filter to subscribe to (repeatable).
    #[arg(short = 't', long)]
    pub topic: Vec<String>,
    /// Maximum QoS of the subscriptions.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = client_opts::parse_qos)]
    pub qos: u8,
    /// Stop after this many messages.
    #[arg(short = 'C', long = "count", value_name = "N")]
    pub count: Option<u64>,
    /// Stop after this many seconds (counted from the SUBACK).
    #[arg(short = 'W', long = "timeout-seconds", value_name = "SECONDS")]
    pub wait: Option<f64>,
    /// Print the topic before the payload.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// A template per message: %t topic, %p payload, %x hex, %l length, %q QoS,
    /// %r retain, %m id, %j JSON, %I/%U time, %C %E %R %D %A %S %P (5.0 properties), \n \t.
    #[arg(short = 'F', long = "format", value_name = "TEMPLATE")]
    pub format: Option<String>,
    /// One JSON object per message (the PUBLISH with every field and property).
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// No newline after each message (plain, -v and -F).
    #[arg(short = 'N', long)]
    pub no_newline: bool,
    /// Do not print retained messages (those the broker sends for a new subscription).
    #[arg(short = 'R', long)]
    pub no_retained: bool,
    /// No Local (5.0): not one's own messages.
    #[arg(long)]
    pub no_local: bool,
    /// Retain As Published (5.0): forwarded messages keep their RETAIN flag.
    #[arg(long)]
    pub retain_as_published: bool,
    /// Retain Handling (5.0): 0 send retained messages, 1 only for a new subscription, 2 never.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub retain_handling: u8,
    /// Subscription Identifier (5.0), 1 to 268435455.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=268_435_455))]
    pub subscription_identifier: Option<u32>,
    /// A User Property KEY=VALUE on the SUBSCRIBE (5.0; repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub user_property: Vec<String>,
}

pub fn run(args: &Args, _stdin: &mut dyn Read, out: &mut dyn Write) -> Result<Status, CmdError> {
    let mut sets = args.connect.property_sets()?;
    for kv in &args.user_property {
        let p = client_opts::property(
            PropertyContext::Subscribe,
            "user-property",
            std::slice::from_ref(kv),
        )
        .map_err(|e| CmdError::Usage(format!("--user-property: {e}")))?;
        sets.subscribe.push(p);
    }
    if let Some(id) = args.subscription_identifier {
        sets.subscribe.push(Property::SubscriptionIdentifier(id));
    }
    let v5_options = args.no_local || args.retain_as_published || args.retain_handling != 0;
    if v5_options && !args.connect.protocol.is_v5() {
        return Err(CmdError::Usage(
            "--no-local, --retain-as-published and --retain-handling need MQTT 5.0: add -V 5"
                .into(),
        ));
    }
    let (opts, url_topic) = args.connect.options("sub", &sets)?;
    let mut filters: Vec<String> = args.topic.clone();
    filters.extend(url_topic);
    if filters.is_empty() {
        return Err(CmdError::Usage(
            "no topic filter: give -t FILTER (repeatable), e.g. -t 'sensors/#'".into(),
        ));
    }
    if let Some(f) = filters.iter().find(|f| f.is_empty()) {
        return Err(CmdError::Usage(format!(
            "-t `{f}`: a topic filter is at least one character [MQTT-4.7.3-1]"
        )));
    }
    let wait = match args.wait {
        Some(w) if !(w > 0.0 && w < 1e9) => {
            return Err(CmdError::Usage(format!(
                "-W {w}: give a number of seconds above 0"
            )))
        }
        Some(w) => Some(Duration::from_secs_f64(w)),
        None => None,
    };
    if args.count == Some(0) {
        return Err(CmdError::Usage(
            "-C 0 would stop before any message; give 1 or more".into(),
        ));
    }
    let options = SubscriptionOptions {
        qos: client_opts::qos(args.qos),
        no_local: args.no_local,
        retain_as_published: args.retain_as_published,
        retain_handling: args.retain_handling,
    };
    let subs: Vec<Subscription> = filters
        .iter()
        .map(|f| Subscription {
            filter: f.as_str().into(),
            options,
        })
        .collect();
    let mut trace = Trace::new(&args.connect);
    let rt = client_opts::runtime()?;
    rt.block_on(async {
        let mut session = match Session::open(&opts).await {
            Ok(s) => s,
            Err(e) => return outcome(e),
        };
        let connected = session.handshake(&opts).await;
        trace.show(&mut session);
        if let Err(e) = connected {
            return outcome(e);
        }
        let codes = session.subscribe(subs, sets.subscribe.clone()).await;
        trace.show(&mut session);
        let codes = match codes {
            Ok(c) => c,
            Err(e) => return outcome(e),
        };
        for (f, c) in filters.iter().zip(&codes) {
            if *c >= 0x80 {
                let name = crate::packet::reason_name(*c, mqtt_codec::PacketType::SubAck, session.protocol());
                eprintln!("error: the broker refused the subscription to `{f}`: SUBACK code 0x{c:02X} ({name})");
                let _ = session.disconnect(0, sets.disconnect.clone()).await;
                return Ok(Status::Fail);
            }
        }
        let deadline = wait.map(|w| Instant::now() + w);
        let mut received = 0u64;
        let result = loop {
            if args.count.is_some_and(|n| received >= n) {
                break Ok(Status::Pass);
            }
            let next = tokio::select! {
                r = session.recv(deadline) => r,
                _ = tokio::signal::ctrl_c() => break Ok(Status::Pass),
            };
            trace.show(&mut session);
            match next {
                Ok(Some(m)) => {
                    if args.no_retained && m.retain {
                        continue;
                    }
                    received += 1;
                    if let Err(e) = print(args, &m, session.protocol(), out) {
                        break Err(CmdError::Output(e));
                    }
                }
                Ok(None) => match args.count {
                    Some(n) => {
                        eprintln!("error: {received} of {n} messages arrived within -W {}", args.wait.unwrap_or_default());
                        break Ok(Status::Fail);
                    }
                    None => break Ok(Status::Pass),
                },
                Err(e) => break outcome(e),
            }
        };
        let _ = session.disconnect(0, sets.disconnect.clone()).await;
        trace.show(&mut session);
        result
    })
}

fn print(
    args: &Args,
    m: &mqtt_codec::Publish,
    protocol: mqtt_codec::Protocol,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    if args.json {
        writeln!(out, "{}", sub_format::json_line(m, protocol))?;
    } else {
        let text = match &args.format {
            Some(f) => sub_format::template(f, m, protocol),
            None if args.verbose => format!("{} {}", m.topic, String::from_utf8_lossy(&m.payload)),
            None => String::from_utf8_lossy(&m.payload).into_owned(),
        };
        out.write_all(text.as_bytes())?;
        if !args.no_newline {
            out.write_all(b"\n")?;
        }
    }
    // Scripts read messages as they come.
    out.flush()
}
