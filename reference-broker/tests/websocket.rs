//! MQTT over WebSocket (chapter 6): the broker selects the subprotocol
//! `mqtt`, closes on a frame that is not binary, and reads packets across
//! frame boundaries. Each deliberate violation of those rules is proven here,
//! against the real transport (the sans-IO core never sees frames): the
//! compliant broker passes the check, the violating one fails it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use futures_util::{SinkExt, StreamExt};
use mqtt_codec::{Connect, Packet, Protocol};
use reference_broker::transport::{self, Transport};
use reference_broker::Config;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

type Ws = WebSocketStream<TcpStream>;

const WAIT: Duration = Duration::from_secs(3);

/// A broker serving WebSocket on a loopback port, breaking `violate`.
async fn broker(violate: Option<&str>) -> (SocketAddr, oneshot::Sender<()>) {
    let mut config = Config::default();
    if let Some(id) = violate {
        config.violations.add(id).expect("a known violation");
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(transport::run(
        listener,
        Transport::Ws,
        config,
        async move {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

/// A WebSocket handshake offering `mqtt`: the stream, and the subprotocol
/// the server selected; the handshake's error where it failed.
async fn open(addr: SocketAddr) -> Result<(Ws, Option<String>), String> {
    let mut request = format!("ws://{addr}/mqtt")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (ws, response) = tokio_tungstenite::client_async(request, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let selected = response
        .headers()
        .get("Sec-WebSocket-Protocol")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    Ok((ws, selected))
}

fn bytes_of(packet: &Packet, protocol: Protocol) -> Vec<u8> {
    let mut out = BytesMut::new();
    mqtt_codec::encode(packet, protocol, &mut out).expect("encodes");
    out.to_vec()
}

/// A connected MQTT 3.1.1 session over WebSocket.
async fn connected(addr: SocketAddr) -> Ws {
    let (mut ws, _) = open(addr).await.expect("the handshake succeeds");
    let connect = Packet::Connect(Box::new(Connect::new(Protocol::V3_1_1, "ws-client")));
    ws.send(Message::Binary(bytes_of(&connect, Protocol::V3_1_1)))
        .await
        .expect("send CONNECT");
    let first = next_bytes(&mut ws).await;
    assert_eq!(first.first(), Some(&0x20), "CONNACK first: {first:?}");
    ws
}

/// The payload of the next binary frame; empty once the connection closed
/// or nothing came within [`WAIT`].
async fn next_bytes(ws: &mut Ws) -> Vec<u8> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Binary(b)))) => return b,
            Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
            _ => return Vec::new(),
        }
    }
}

#[tokio::test]
async fn violation_no_subprotocol_selected() {
    let (addr, stop) = broker(None).await;
    let (_, selected) = open(addr).await.expect("the handshake succeeds");
    assert_eq!(selected.as_deref(), Some("mqtt"));
    let _ = stop.send(());
    // A client that offers `mqtt` refuses a handshake that selects none.
    let (addr, stop) = broker(Some("MQTT-6.0.0-4")).await;
    let refused = open(addr).await.map(|(_, s)| s);
    assert!(refused.is_err(), "{refused:?}");
    let _ = stop.send(());
}

#[tokio::test]
async fn violation_text_frame_taken_as_mqtt() {
    // A PUBLISH to "a/b" (30 05 00 03 61 2f 62) is valid UTF-8: sent as a
    // text frame, then a PINGREQ in a binary one.
    let publish_as_text = "0\u{5}\u{0}\u{3}a/b".to_string();
    for (violate, answered) in [(None, false), (Some("MQTT-6.0.0-1"), true)] {
        let (addr, stop) = broker(violate).await;
        let mut ws = connected(addr).await;
        ws.send(Message::Text(publish_as_text.clone()))
            .await
            .expect("send the text frame");
        let _ = ws.send(Message::Binary(vec![0xC0, 0x00])).await;
        let pingresp = next_bytes(&mut ws).await == [0xD0, 0x00];
        assert_eq!(pingresp, answered, "violating {violate:?}");
        let _ = stop.send(());
    }
}

#[tokio::test]
async fn violation_packets_assumed_aligned_with_frames() {
    for (violate, answered) in [(None, true), (Some("MQTT-6.0.0-2"), false)] {
        let (addr, stop) = broker(violate).await;
        let mut ws = connected(addr).await;
        // PINGREQ split over two frames.
        ws.send(Message::Binary(vec![0xC0])).await.expect("send");
        let _ = ws.send(Message::Binary(vec![0x00])).await;
        let pingresp = next_bytes(&mut ws).await == [0xD0, 0x00];
        assert_eq!(pingresp, answered, "violating {violate:?}");
        let _ = stop.send(());
    }
}
