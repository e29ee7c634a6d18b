//! `docs/reason-codes.md` says which 5.0 reason code each decode error earns
//! and which section of the specification decides it. These tests hold the
//! codec to that table: every row's code is what `reason_code()` gives, and
//! every error the codec can report has a row.

use mqtt_codec::topic::TopicError;
use mqtt_codec::{DecodeError, ErrorKind, PacketType, Protocol, Sender};

/// One sample error per row of the table, under the row's key.
fn samples() -> Vec<(&'static str, PacketType, Sender, ErrorKind)> {
    use ErrorKind::*;
    use PacketType as T;
    let c = Sender::Client;
    let s = Sender::Server;
    let value = |id: u8, value: u32| PropertyValue { id, value };
    vec![
        ("ReservedPacketType", T::Connect, c, ReservedPacketType(0)),
        (
            "VarintTooLong",
            T::PingReq,
            c,
            VarintTooLong {
                field: "remaining_length",
            },
        ),
        (
            "VarintNotMinimal",
            T::PingReq,
            c,
            VarintNotMinimal {
                field: "remaining_length",
            },
        ),
        (
            "PacketTooLarge",
            T::Publish,
            c,
            PacketTooLarge { size: 10, max: 5 },
        ),
        ("InvalidFlags", T::PingReq, c, InvalidFlags { flags: 1 }),
        ("WrongDirection", T::ConnAck, c, WrongDirection),
        (
            "UnexpectedEnd",
            T::Publish,
            c,
            UnexpectedEnd { field: "topic" },
        ),
        ("TrailingBytes", T::PingReq, c, TrailingBytes { count: 2 }),
        ("InvalidUtf8", T::Publish, c, InvalidUtf8 { field: "topic" }),
        (
            "NullCharacter",
            T::Publish,
            c,
            NullCharacter { field: "topic" },
        ),
        ("PublishQos3", T::Publish, c, PublishQos3),
        ("DupOnQos0", T::Publish, c, DupOnQos0),
        ("PacketIdZero", T::Subscribe, c, PacketIdZero),
        (
            "TopicName{topic}",
            T::Publish,
            c,
            TopicName {
                field: "topic",
                error: TopicError::WildcardInName,
            },
        ),
        (
            "TopicName{other}",
            T::Publish,
            c,
            TopicName {
                field: "response_topic",
                error: TopicError::WildcardInName,
            },
        ),
        ("EmptyTopic", T::Publish, c, EmptyTopic),
        (
            "ProtocolName",
            T::Connect,
            c,
            ProtocolName {
                name: "MQTX".into(),
            },
        ),
        ("ProtocolLevel", T::Connect, c, ProtocolLevel { level: 6 }),
        ("ConnectReservedFlag", T::Connect, c, ConnectReservedFlag),
        ("WillQosWithoutWill", T::Connect, c, WillQosWithoutWill),
        (
            "WillRetainWithoutWill",
            T::Connect,
            c,
            WillRetainWithoutWill,
        ),
        ("WillQos3", T::Connect, c, WillQos3),
        ("ConnAckReservedFlags", T::ConnAck, s, ConnAckReservedFlags),
        (
            "SessionPresentOnFailure",
            T::ConnAck,
            s,
            SessionPresentOnFailure,
        ),
        (
            "InvalidReasonCode",
            T::PubAck,
            c,
            InvalidReasonCode { code: 0x05 },
        ),
        ("NoTopicFilters", T::Subscribe, c, NoTopicFilters),
        (
            "SubscriptionOptionsReserved",
            T::Subscribe,
            c,
            SubscriptionOptionsReserved { options: 0xC0 },
        ),
        ("SubscriptionQos3", T::Subscribe, c, SubscriptionQos3),
        ("RetainHandling3", T::Subscribe, c, RetainHandling3),
        (
            "TopicFilter",
            T::Subscribe,
            c,
            TopicFilter {
                error: TopicError::MultiLevelMisplaced,
            },
        ),
        ("NoLocalOnShared", T::Subscribe, c, NoLocalOnShared),
        (
            "UnknownProperty",
            T::Publish,
            c,
            UnknownProperty { id: 0x7F },
        ),
        (
            "PropertyNotAllowed",
            T::Publish,
            c,
            PropertyNotAllowed { id: 0x11 },
        ),
        (
            "DuplicateProperty",
            T::Publish,
            c,
            DuplicateProperty { id: 0x02 },
        ),
        ("PropertyValue{0x21}", T::Connect, c, value(0x21, 0)),
        ("PropertyValue{0x27}", T::Connect, c, value(0x27, 0)),
        ("PropertyValue{0x17}", T::Connect, c, value(0x17, 2)),
        ("PropertyValue{0x19}", T::Connect, c, value(0x19, 2)),
        ("PropertyValue{0x24}", T::ConnAck, s, value(0x24, 2)),
        ("PropertyValue{0x25}", T::ConnAck, s, value(0x25, 2)),
        ("PropertyValue{0x28}", T::ConnAck, s, value(0x28, 2)),
        ("PropertyValue{0x29}", T::ConnAck, s, value(0x29, 2)),
        ("PropertyValue{0x2A}", T::ConnAck, s, value(0x2A, 2)),
        ("PropertyValue{0x0B}", T::Subscribe, c, value(0x0B, 0)),
        ("PropertyValue{0x01}", T::Publish, c, value(0x01, 2)),
        ("PropertyValue{0x23}", T::Publish, c, value(0x23, 0)),
        (
            "PropertyLengthOverflow",
            T::Publish,
            c,
            PropertyLengthOverflow,
        ),
        (
            "AuthDataWithoutMethod",
            T::Connect,
            c,
            AuthDataWithoutMethod,
        ),
        (
            "SubscriptionIdFromClient",
            T::Publish,
            c,
            SubscriptionIdFromClient,
        ),
        (
            "SessionExpiryFromServer",
            T::Disconnect,
            s,
            SessionExpiryFromServer,
        ),
    ]
}

/// The table's rows: key (the first cell's backticked text), code, decision.
fn rows() -> Vec<(String, u8, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/reason-codes.md");
    let text = std::fs::read_to_string(path).expect("docs/reason-codes.md is readable");
    text.lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let key = cells[1].trim_matches('`').to_string();
            let code = cells[3].trim_start_matches("0x");
            let code = u8::from_str_radix(code, 16)
                .unwrap_or_else(|_| panic!("row `{key}`: code {:?} is not 0xNN", cells[3]));
            (key, code, cells[4].to_string())
        })
        .collect()
}

#[test]
fn every_row_gives_the_code_the_codec_sends() {
    let samples = samples();
    for (key, code, _) in rows() {
        let (_, ty, from, kind) = samples
            .iter()
            .find(|(k, ..)| *k == key)
            .unwrap_or_else(|| panic!("row `{key}` has no sample error in this test"));
        let e = DecodeError {
            offset: 0,
            packet: Some(*ty),
            protocol: Protocol::V5,
            from: *from,
            kind: kind.clone(),
        };
        assert_eq!(
            e.reason_code(),
            code,
            "row `{key}`: the table says 0x{code:02X}, the codec sends 0x{:02X}",
            e.reason_code()
        );
    }
}

#[test]
fn every_sample_error_has_a_row_and_each_row_says_who_decides() {
    let rows = rows();
    for (key, ..) in samples() {
        let n = rows.iter().filter(|(k, ..)| k == key).count();
        assert_eq!(
            n, 1,
            "`{key}` must have exactly one row in docs/reason-codes.md"
        );
    }
    for (key, code, decision) in &rows {
        let undecided = decision.starts_with("not decided");
        // A row that names a section decides 0x81 or 0x82; an undecided one
        // says both are accepted; a row for another code says neither applies.
        match code {
            0x81 | 0x82 => assert!(
                undecided && decision.contains("both accepted")
                    || decision.chars().next().is_some_and(|c| c.is_ascii_digit()),
                "row `{key}`: a 0x81/0x82 row starts with its section or says `not decided: both accepted`"
            ),
            _ => assert!(
                decision.starts_with("neither"),
                "row `{key}`: a row for 0x{code:02X} starts with `neither`"
            ),
        }
    }
}

/// The variant's name. The match is exhaustive, so a new `ErrorKind` does
/// not compile here until it is named, and then fails the test below until
/// it has a sample (and so a row).
fn variant(kind: &ErrorKind) -> &'static str {
    use ErrorKind::*;
    match kind {
        ReservedPacketType(_) => "ReservedPacketType",
        VarintTooLong { .. } => "VarintTooLong",
        VarintNotMinimal { .. } => "VarintNotMinimal",
        PacketTooLarge { .. } => "PacketTooLarge",
        InvalidFlags { .. } => "InvalidFlags",
        WrongDirection => "WrongDirection",
        UnexpectedEnd { .. } => "UnexpectedEnd",
        TrailingBytes { .. } => "TrailingBytes",
        InvalidUtf8 { .. } => "InvalidUtf8",
        NullCharacter { .. } => "NullCharacter",
        PublishQos3 => "PublishQos3",
        DupOnQos0 => "DupOnQos0",
        PacketIdZero => "PacketIdZero",
        TopicName { .. } => "TopicName",
        EmptyTopic => "EmptyTopic",
        ProtocolName { .. } => "ProtocolName",
        ProtocolLevel { .. } => "ProtocolLevel",
        ConnectReservedFlag => "ConnectReservedFlag",
        WillQosWithoutWill => "WillQosWithoutWill",
        WillRetainWithoutWill => "WillRetainWithoutWill",
        WillQos3 => "WillQos3",
        // 3.1 / 3.1.1 only: 5.0 allows a password without a user name.
        PasswordWithoutUsername => "PasswordWithoutUsername",
        ConnAckReservedFlags => "ConnAckReservedFlags",
        SessionPresentOnFailure => "SessionPresentOnFailure",
        InvalidReasonCode { .. } => "InvalidReasonCode",
        NoTopicFilters => "NoTopicFilters",
        SubscriptionOptionsReserved { .. } => "SubscriptionOptionsReserved",
        SubscriptionQos3 => "SubscriptionQos3",
        RetainHandling3 => "RetainHandling3",
        TopicFilter { .. } => "TopicFilter",
        NoLocalOnShared => "NoLocalOnShared",
        UnknownProperty { .. } => "UnknownProperty",
        PropertyNotAllowed { .. } => "PropertyNotAllowed",
        DuplicateProperty { .. } => "DuplicateProperty",
        PropertyValue { .. } => "PropertyValue",
        PropertyLengthOverflow => "PropertyLengthOverflow",
        AuthDataWithoutMethod => "AuthDataWithoutMethod",
        SubscriptionIdFromClient => "SubscriptionIdFromClient",
        SessionExpiryFromServer => "SessionExpiryFromServer",
    }
}

#[test]
fn the_samples_cover_every_error_kind_of_5_0() {
    let covered: std::collections::BTreeSet<&str> =
        samples().iter().map(|(_, _, _, k)| variant(k)).collect();
    // Every variant but the 3.1.1-only one, by the exhaustive match above.
    let all = [
        "ReservedPacketType",
        "VarintTooLong",
        "VarintNotMinimal",
        "PacketTooLarge",
        "InvalidFlags",
        "WrongDirection",
        "UnexpectedEnd",
        "TrailingBytes",
        "InvalidUtf8",
        "NullCharacter",
        "PublishQos3",
        "DupOnQos0",
        "PacketIdZero",
        "TopicName",
        "EmptyTopic",
        "ProtocolName",
        "ProtocolLevel",
        "ConnectReservedFlag",
        "WillQosWithoutWill",
        "WillRetainWithoutWill",
        "WillQos3",
        "ConnAckReservedFlags",
        "SessionPresentOnFailure",
        "InvalidReasonCode",
        "NoTopicFilters",
        "SubscriptionOptionsReserved",
        "SubscriptionQos3",
        "RetainHandling3",
        "TopicFilter",
        "NoLocalOnShared",
        "UnknownProperty",
        "PropertyNotAllowed",
        "DuplicateProperty",
        "PropertyValue",
        "PropertyLengthOverflow",
        "AuthDataWithoutMethod",
        "SubscriptionIdFromClient",
        "SessionExpiryFromServer",
    ];
    for name in all {
        assert!(
            covered.contains(name),
            "`{name}` has no sample, so no row is checked"
        );
    }
    assert!(
        !covered.contains("PasswordWithoutUsername"),
        "that error does not occur under 5.0"
    );
}
