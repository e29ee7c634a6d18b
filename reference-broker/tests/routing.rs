//! Routing through the subscription index: who receives a PUBLISH must be
//! exactly who a scan of every subscription finds, through subscribes,
//! unsubscribes and sessions that end and come back with other filters.
//! (Debug builds also check the index against a scan on every PUBLISH.)

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use bytes::Bytes;
use mqtt_codec::topic;
use mqtt_codec::{
    Connect, Disconnect, Packet, Properties, Protocol, Publish, QoS, Subscribe, Subscription,
    SubscriptionOptions, Unsubscribe,
};
use reference_broker::{Action, Broker, Config, ConnId};

const V5: Protocol = Protocol::V5;

struct Net {
    broker: Broker,
    now: Instant,
    /// Client id → its connection.
    conns: BTreeMap<String, ConnId>,
    /// Client id → its filters, as the test expects them.
    filters: BTreeMap<String, BTreeSet<String>>,
    next_packet_id: u16,
}

impl Net {
    fn new() -> Net {
        Net {
            broker: Broker::new(Config::default()),
            now: Instant::now(),
            conns: BTreeMap::new(),
            filters: BTreeMap::new(),
            next_packet_id: 1,
        }
    }

    /// Packets sent per connection since the last call.
    fn drain(&mut self) -> BTreeMap<ConnId, Vec<Packet>> {
        let mut out: BTreeMap<ConnId, Vec<Packet>> = BTreeMap::new();
        while let Some(a) = self.broker.poll_action() {
            match a {
                Action::Send { conn, packet, .. } => out.entry(conn).or_default().push(packet),
                Action::Close { conn } => self.broker.closed(conn, self.now),
            }
        }
        out
    }

    fn packet_id(&mut self) -> u16 {
        self.next_packet_id = self.next_packet_id.wrapping_add(1).max(1);
        self.next_packet_id
    }

    /// Connects `id` with a clean start (any earlier session is gone).
    fn connect(&mut self, id: &str) {
        let conn = self.broker.open(self.now).expect("room for a connection");
        let mut c = Connect::new(V5, id);
        c.clean_start = true;
        self.broker
            .packet(conn, Packet::Connect(Box::new(c)), self.now);
        let out = self.drain();
        assert!(
            matches!(out.get(&conn).and_then(|p| p.first()), Some(Packet::ConnAck(a)) if a.code == 0)
        );
        self.conns.insert(id.into(), conn);
        self.filters.insert(id.into(), BTreeSet::new());
    }

    fn disconnect(&mut self, id: &str) {
        let conn = self.conns.remove(id).expect("connected");
        self.broker
            .packet(conn, Packet::Disconnect(Disconnect::default()), self.now);
        self.drain();
        self.filters.remove(id);
    }

    fn subscribe(&mut self, id: &str, filter: &str) {
        let conn = self.conns[id];
        let packet_id = self.packet_id();
        let sub = Subscribe {
            packet_id,
            properties: Properties::new(),
            filters: vec![Subscription {
                filter: filter.into(),
                options: SubscriptionOptions::qos(QoS::AtMostOnce),
            }],
        };
        self.broker.packet(conn, Packet::Subscribe(sub), self.now);
        self.drain();
        self.filters
            .get_mut(id)
            .expect("connected")
            .insert(filter.into());
    }

    fn unsubscribe(&mut self, id: &str, filter: &str) {
        let conn = self.conns[id];
        let packet_id = self.packet_id();
        let u = Unsubscribe {
            packet_id,
            properties: Properties::new(),
            filters: vec![filter.into()],
        };
        self.broker.packet(conn, Packet::Unsubscribe(u), self.now);
        self.drain();
        self.filters.get_mut(id).expect("connected").remove(filter);
    }

    /// Publishes from `from` and returns who received it.
    fn publish(&mut self, from: &str, name: &str) -> BTreeSet<String> {
        let conn = self.conns[from];
        let p = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: name.into(),
            packet_id: 0,
            properties: Properties::new(),
            payload: Bytes::from_static(b"x"),
        };
        self.broker.packet(conn, Packet::Publish(p), self.now);
        let out = self.drain();
        let by_conn: BTreeMap<ConnId, &String> =
            self.conns.iter().map(|(id, c)| (*c, id)).collect();
        out.iter()
            .filter(|(_, ps)| {
                ps.iter()
                    .any(|p| matches!(p, Packet::Publish(p) if p.topic == name))
            })
            .map(|(c, _)| by_conn[c].clone())
            .collect()
    }

    /// Who a scan of every filter says should receive `name` (one member of
    /// each shared group; the tests below use no shared subscriptions).
    fn expected(&self, name: &str) -> BTreeSet<String> {
        self.filters
            .iter()
            .filter(|(_, fs)| fs.iter().any(|f| topic::matches(f, name)))
            .map(|(id, _)| id.clone())
            .collect()
    }

    fn check(&mut self, names: &[&str]) {
        for name in names {
            let got = self.publish("publisher", name);
            assert_eq!(got, self.expected(name), "receivers of {name:?}");
        }
    }
}

const TOPICS: &[&str] = &["a", "a/b", "a/b/c", "a/x", "b", "$SYS/load", "/a", "", "a/"];

#[test]
fn index_matches_a_scan_through_changes() {
    let mut net = Net::new();
    net.connect("publisher");
    for (id, filters) in [
        ("plain", &["a/b", "b"][..]),
        ("plain2", &["a/b"][..]),
        ("wild", &["a/+"][..]),
        ("mixed", &["a", "a/#"][..]),
        ("all", &["#"][..]),
        ("sys", &["$SYS/#"][..]),
        ("empty-level", &["/a", "a/"][..]),
        ("none", &[][..]),
    ] {
        net.connect(id);
        for f in filters {
            net.subscribe(id, f);
        }
    }
    net.check(TOPICS);

    // Unsubscribing a plain filter, and the last wildcard of a session.
    net.unsubscribe("plain", "a/b");
    net.unsubscribe("mixed", "a/#");
    net.check(TOPICS);

    // A session that ends and comes back under the same id with other filters.
    net.disconnect("plain2");
    net.check(TOPICS);
    net.connect("plain2");
    net.check(TOPICS);
    net.subscribe("plain2", "a/x");
    net.disconnect("wild");
    net.connect("wild");
    net.subscribe("wild", "b");
    net.check(TOPICS);

    // Many sessions on plain topics, one of them matching.
    for i in 0..200 {
        let id = format!("bystander-{i}");
        net.connect(&id);
        net.subscribe(&id, &format!("idle/{i}"));
    }
    net.check(&["idle/7", "idle/200", "a/b"]);
}

#[test]
fn shared_and_no_local_unchanged() {
    let mut net = Net::new();
    net.connect("publisher");
    net.connect("m1");
    net.connect("m2");
    net.subscribe("m1", "$share/g/s/+");
    net.subscribe("m2", "$share/g/s/+");
    // Each message goes to one member of the group, in turn.
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        let got = net.publish("publisher", "s/1");
        assert_eq!(got.len(), 1, "one member per message: {got:?}");
        seen.extend(got);
    }
    assert_eq!(seen, BTreeSet::from(["m1".to_string(), "m2".to_string()]));
    assert!(net.publish("publisher", "s/1/2").is_empty());

    // No Local on a plain filter: the publisher does not get its own message.
    let conn = net.conns["publisher"];
    let sub = Subscribe {
        packet_id: 77,
        properties: Properties::new(),
        filters: vec![Subscription {
            filter: "own".into(),
            options: SubscriptionOptions {
                no_local: true,
                ..SubscriptionOptions::qos(QoS::AtMostOnce)
            },
        }],
    };
    net.broker.packet(conn, Packet::Subscribe(sub), net.now);
    net.drain();
    assert!(net.publish("publisher", "own").is_empty());
}
