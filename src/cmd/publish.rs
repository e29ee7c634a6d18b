//! `mqtt-harness pub`: publish messages, with mosquitto_pub's options.
//!
//! Exit status: 0 every message was published (and acknowledged at QoS 1
//! and 2); 1 the broker refused the connection or a message, closed the
//! connection, did not answer in time or broke the protocol; 2 bad options
//! or input; 3 the broker could not be reached (connection refused, a TLS
//! or WebSocket handshake that failed).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;

use bytes::Bytes;
use mqtt_codec::Property;

use super::client_opts::{self, ConnectArgs, PropertySets};
use super::client_run::{outcome, Trace};
use super::{CmdError, Status};
use crate::client::{Message, Session};

#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
#[command(
    after_help = "Exit status: 0 published (and acknowledged at QoS 1/2); 1 the broker refused, closed, timed out or broke the protocol; 2 bad options or input; 3 the broker could not be reached.\n-l reads standard input between messages without pinging: for input slower than the keep alive, give -k 0."
)]
#[command(group(clap::ArgGroup::new("source").args(["message", "file", "stdin_line", "stdin_file", "null_message"])))]
pub struct Args {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    pub topic: Option<String>,
    /// The message.
    #[arg(short = 'm', long)]
    pub message: Option<String>,
    /// The message is this file's content.
    #[arg(short = 'f', long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Read standard input line by line: one message per line.
    #[arg(short = 'l', long)]
    pub stdin_line: bool,
    /// The message is all of standard input.
    #[arg(short = 's', long)]
    pub stdin_file: bool,
    /// An empty (zero-length) message.
    #[arg(short = 'n', long)]
    pub null_message: bool,
    /// QoS.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = client_opts::parse_qos)]
    pub qos: u8,
    /// Retain the message.
    #[arg(short = 'r', long)]
    pub retain: bool,
    /// A User Property KEY=VALUE (5.0; repeatable).
    #[arg(long, value_name = "KEY=VALUE")]
    pub user_property: Vec<String>,
    /// Content Type (5.0).
    #[arg(long)]
    pub content_type: Option<String>,
    /// Response Topic (5.0).
    #[arg(long)]
    pub response_topic: Option<String>,
    /// Correlation Data, as text (5.0).
    #[arg(long)]
    pub correlation_data: Option<String>,
    /// Message Expiry Interval in seconds (5.0).
    #[arg(long, value_name = "SECONDS")]
    pub message_expiry: Option<u32>,
    /// Topic Alias (5.0): the first message sets it, the next ones (-l) send an empty topic.
    #[arg(long)]
    pub topic_alias: Option<u16>,
    /// Payload Format Indicator 1: the payload is UTF-8 (5.0).
    #[arg(long)]
    pub utf8: bool,
}

/// The PUBLISH properties from the named flags, after those of `-D publish`.
fn publish_properties(args: &Args, sets: &mut PropertySets) -> Result<(), CmdError> {
    let p = &mut sets.publish;
    for kv in &args.user_property {
        let prop = client_opts::property(
            mqtt_codec::props::PropertyContext::Publish,
            "user-property",
            std::slice::from_ref(kv),
        )
        .map_err(|e| CmdError::Usage(format!("--user-property: {e}")))?;
        p.push(prop);
    }
    if args.utf8 {
        p.push(Property::PayloadFormatIndicator(1));
    }
    if let Some(v) = args.message_expiry {
        p.push(Property::MessageExpiryInterval(v));
    }
    if let Some(v) = args.topic_alias {
        if v == 0 {
            return Err(CmdError::Usage(
                "--topic-alias 0 is not a topic alias [MQTT-3.3.2-8]; give 1 or more".into(),
            ));
        }
        p.push(Property::TopicAlias(v));
    }
    if let Some(v) = &args.content_type {
        p.push(Property::ContentType(v.as_str().into()));
    }
    if let Some(v) = &args.response_topic {
        if v.contains(['#', '+']) {
            return Err(CmdError::Usage(format!(
                "--response-topic `{v}` contains a wildcard [MQTT-3.3.2-14]"
            )));
        }
        p.push(Property::ResponseTopic(v.as_str().into()));
    }
    if let Some(v) = &args.correlation_data {
        p.push(Property::CorrelationData(Bytes::from(v.clone())));
    }
    Ok(())
}

/// Where messages come from.
enum Source {
    One(Bytes),
    Lines,
}

fn source(args: &Args, stdin: &mut dyn Read) -> Result<Source, CmdError> {
    if let Some(m) = &args.message {
        return Ok(Source::One(Bytes::from(m.clone())));
    }
    if let Some(f) = &args.file {
        let bytes = std::fs::read(f)
            .map_err(|e| CmdError::Usage(format!("-f {}: cannot read it: {e}", f.display())))?;
        return Ok(Source::One(Bytes::from(bytes)));
    }
    if args.stdin_file {
        let mut b = Vec::new();
        stdin
            .read_to_end(&mut b)
            .map_err(|e| CmdError::Usage(format!("-s: cannot read standard input: {e}")))?;
        return Ok(Source::One(Bytes::from(b)));
    }
    if args.null_message {
        return Ok(Source::One(Bytes::new()));
    }
    if args.stdin_line {
        return Ok(Source::Lines);
    }
    Err(CmdError::Usage(
        "no message: give -m TEXT, -f FILE, -l (stdin line by line), -s (all of stdin) or -n (empty)".into(),
    ))
}

pub fn run(args: &Args, stdin: &mut dyn Read, _out: &mut dyn Write) -> Result<Status, CmdError> {
    let mut sets = args.connect.property_sets()?;
    publish_properties(args, &mut sets)?;
    let (opts, url_topic) = args.connect.options("pub", &sets)?;
    let topic = args.topic.clone().or(url_topic).ok_or_else(|| {
        CmdError::Usage(
            "no topic: give -t TOPIC (or a URL with a path, -L mqtt://host/TOPIC)".into(),
        )
    })?;
    if topic.is_empty() || topic.contains(['#', '+']) {
        return Err(CmdError::Usage(format!(
            "-t `{topic}`: a topic to publish to is not empty and has no wildcards (# +) [MQTT-3.3.2-2]"
        )));
    }
    let source = source(args, stdin)?;
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
        let mut message = Message {
            topic,
            payload: Bytes::new(),
            qos: client_opts::qos(args.qos),
            retain: args.retain,
            properties: sets.publish.clone(),
        };
        let mut send = |payload: Bytes| {
            message.payload = payload;
            message.clone()
        };
        let result = match source {
            Source::One(p) => publish_one(&mut session, &send(p), &mut trace).await,
            Source::Lines => {
                let mut lines = BufReader::new(stdin);
                let mut r = Ok(());
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match lines.read_until(b'\n', &mut line) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            r = Err(crate::client::ClientError::Input(format!(
                                "-l: cannot read standard input: {e}"
                            )));
                            break;
                        }
                    }
                    let end = line.strip_suffix(b"\n").unwrap_or(&line);
                    let end = end.strip_suffix(b"\r").unwrap_or(end);
                    r = publish_one(&mut session, &send(Bytes::copy_from_slice(end)), &mut trace)
                        .await;
                    if r.is_err() {
                        break;
                    }
                }
                r
            }
        };
        let r = match result {
            Ok(()) => session.disconnect(0, sets.disconnect.clone()).await,
            Err(e) => Err(e),
        };
        trace.show(&mut session);
        match r {
            Ok(()) => Ok(Status::Pass),
            Err(e) => outcome(e),
        }
    })
}

async fn publish_one(
    session: &mut Session,
    m: &Message,
    trace: &mut Trace,
) -> Result<(), crate::client::ClientError> {
    let r = session.publish(m).await;
    trace.show(session);
    let code = r?;
    if code != 0 {
        let name =
            crate::packet::reason_name(code, mqtt_codec::PacketType::PubAck, session.protocol());
        eprintln!("note: the broker acknowledged with code 0x{code:02X} ({name})");
    }
    Ok(())
}
