//! The book in a real browser, used as a person would: Debian's headless
//! Chromium, driven over the DevTools protocol (a WebSocket on a loopback
//! port), opens a statement page from `file://`, types into the search box
//! and follows a result, opens an exchange and a packet's hex, and follows a
//! statement's link into a case, which the page's script unfolds. Every wait
//! polls the page under a deadline. Without Chromium this test fails:
//! `.ci/run` installs it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-harness");
const CHROMIUM: &str = "/usr/bin/chromium";
const DEADLINE: Duration = Duration::from_secs(30);

/// Chromium with a page to drive; killed when dropped.
struct Browser {
    child: Child,
    ws: WebSocketStream<TcpStream>,
    next: u64,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on the DevTools HTTP endpoint: its body, read up to its
/// Content-Length (Chromium may reset the connection after it).
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(DEADLINE)).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while got.len() < 1 << 20 {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse::<usize>().ok())?
            })?;
            if body.len() >= len {
                return Some(body.to_string());
            }
        }
    }
    None
}

impl Browser {
    async fn start(profile: &Path) -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing: install Debian's chromium package (.ci/run does)"
        );
        let _ = std::fs::remove_dir_all(profile);
        let child = Command::new(CHROMIUM)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium starts");
        // Chromium writes the port it chose into the profile, then lists its
        // pages over HTTP. Neither announces itself to a process that did not
        // start the browser's pipe protocol, so both are polled, every 50 ms,
        // bounded by DEADLINE: a wait for a state, not for time to pass.
        let started = Instant::now();
        let (port, ws_url) = loop {
            assert!(
                started.elapsed() < DEADLINE,
                "chromium offered no DevTools page in {DEADLINE:?}"
            );
            let port = std::fs::read_to_string(profile.join("DevToolsActivePort"))
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u16>().ok()));
            let page = port
                .and_then(|p| http_get(p, "/json/list"))
                .and_then(|body| {
                    let list: Value = serde_json::from_str(&body).ok()?;
                    list.as_array()?
                        .iter()
                        .find(|t| t["type"] == "page")
                        .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
                });
            if let (Some(port), Some(url)) = (port, page) {
                break (port, url);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("the DevTools port");
        let (ws, _) =
            tokio::time::timeout(DEADLINE, tokio_tungstenite::client_async(ws_url, stream))
                .await
                .expect("the DevTools handshake in time")
                .expect("the DevTools handshake");
        let mut b = Browser { child, ws, next: 0 };
        b.call("Page.enable", json!({})).await;
        b
    }

    /// One DevTools command: its result (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        match self.try_call(method, params).await {
            Ok(v) => v,
            Err(e) => panic!("{method}: {e}"),
        }
    }

    /// One DevTools command: its result, or the error Chromium answered.
    async fn try_call(&mut self, method: &str, params: Value) -> Result<Value, Value> {
        self.next += 1;
        let id = self.next;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(Message::text(msg))
            .await
            .expect("send to chromium");
        loop {
            let frame = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no answer to {method} in {DEADLINE:?}"))
                .expect("chromium is still there")
                .expect("a frame");
            let Message::Text(text) = frame else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("JSON from chromium");
            if v["id"] == id {
                return match v.get("error") {
                    Some(e) => Err(e.clone()),
                    None => Ok(v["result"].clone()),
                };
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expression` is true: the page reacts to input and loads
    /// asynchronously. The waiting happens in the page, on its animation
    /// frames (a promise that settles when the expression holds, or after
    /// 2 s, whichever comes first), so the test sends one request per
    /// interval instead of sleeping. While a page is being replaced there is
    /// nothing to evaluate in: an error then counts as not yet, and the next
    /// request waits in the new page.
    async fn wait_for(&mut self, expression: &str) {
        let waiter = format!(
            "new Promise(done => {{ \
               const holds = () => {{ try {{ return !!({expression}); }} catch (e) {{ return false; }} }}; \
               setTimeout(() => done(holds()), 2000); \
               (function check() {{ if (holds()) done(true); else requestAnimationFrame(check); }})(); \
             }})"
        );
        let started = Instant::now();
        loop {
            let params = json!({"expression": waiter, "returnByValue": true, "awaitPromise": true});
            let r = self.try_call("Runtime.evaluate", params).await;
            if r.is_ok_and(|r| r["result"]["value"] == json!(true)) {
                return;
            }
            assert!(
                started.elapsed() < DEADLINE,
                "not true within {DEADLINE:?}: {expression}"
            );
        }
    }

    async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        let quoted = json!(url).to_string();
        self.wait_for(&format!(
            "location.href === {quoted} && document.readyState === 'complete'"
        ))
        .await;
    }

    /// A real mouse click in the middle of the first element `selector` matches.
    async fn click(&mut self, selector: &str) {
        let sel = json!(selector).to_string();
        let at = self
            .eval(&format!(
                "(function(){{var e=document.querySelector({sel}); if(!e) return null; e.scrollIntoView({{block:'center'}}); \
                 var r=e.getBoundingClientRect(); return [r.left+r.width/2, r.top+r.height/2];}})()"
            ))
            .await;
        let (x, y) = (at[0].as_f64(), at[1].as_f64());
        let (Some(x), Some(y)) = (x, y) else {
            panic!("nothing to click: {selector}")
        };
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            )
            .await;
        }
    }
}

fn build_book() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("book_browser");
    let _ = std::fs::remove_dir_all(&dir);
    let site = dir.join("site");
    // One scenario is enough to read: the chapters hold every statement.
    let out = Command::new(BIN)
        .arg("book")
        .arg(&site)
        .args(["--scenarios", "scenarios/shared/3.12-pingreq/pingresp.yaml"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the harness runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    site
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_navigates_searches_and_opens_an_exchange_in_a_real_browser() {
    let site = build_book();
    let url = |path: &str| format!("file://{}/{path}", site.display());
    let mut b = Browser::start(&site.parent().expect("a parent").join("profile")).await;

    // A statement, as a link into its chapter shows it.
    b.goto(&url("spec/5.0-3.12.html#MQTT-3.12.4-1")).await;
    assert_eq!(
        b.eval("document.querySelector('article:target').id").await,
        "MQTT-3.12.4-1"
    );
    let summary = b
        .eval("document.querySelector('article:target .summary').textContent")
        .await;
    assert_eq!(summary, "Server answers each PINGREQ with a PINGRESP.");

    // Typing into the search box lists matches; the first is followed.
    b.click("#search").await;
    b.call("Input.insertText", json!({"text": "PINGRESP"}))
        .await;
    b.wait_for("document.querySelectorAll('#results li').length > 0")
        .await;
    let count = b
        .eval("document.getElementById('result-count').textContent")
        .await;
    assert!(
        count.as_str().is_some_and(|c| c.ends_with(" matches")),
        "{count}"
    );
    let first = b
        .eval("document.querySelector('#results li b').textContent")
        .await;
    assert_eq!(first, "shared/3.12-pingreq/pingresp");
    b.click("#results li a").await;
    b.wait_for("location.pathname.endsWith('/scenarios/shared--3.12-pingreq--pingresp.html') && document.readyState === 'complete'")
        .await;

    // The first case's exchange is open; the 5.0 one opens on a click, and
    // a packet's hex on another.
    assert_eq!(
        b.eval("document.querySelector('[id=\"case-3.1\"] details.exchange').open")
            .await,
        true
    );
    assert_eq!(
        b.eval("document.querySelector('[id=\"case-5.0\"] details.exchange').open")
            .await,
        false
    );
    let shown = "document.getElementById('case-5.0-4').checkVisibility()";
    assert_eq!(b.eval(shown).await, false, "folded away");
    b.click("[id=\"case-5.0\"] details.exchange > summary")
        .await;
    b.wait_for("document.querySelector('[id=\"case-5.0\"] details.exchange').open")
        .await;
    assert_eq!(b.eval(shown).await, true, "shown");
    let pingresp = b
        .eval("document.getElementById('case-5.0-4').innerText")
        .await;
    assert!(
        pingresp
            .as_str()
            .is_some_and(|t| t.contains("← broker PINGRESP")),
        "{pingresp}"
    );
    b.click("[id=\"case-5.0-4\"] details.hex > summary").await;
    b.wait_for("document.querySelector('[id=\"case-5.0-4\"] details.hex').open")
        .await;
    assert_eq!(
        b.eval("document.querySelector('[id=\"case-5.0-4\"] details.hex pre').innerText")
            .await,
        "d0 00"
    );

    // From the statement, its 5.0 case: the script unfolds the exchange.
    b.goto(&url("spec/5.0-3.12.html#MQTT-3.12.4-1")).await;
    b.click("[id=\"MQTT-3.12.4-1\"] a.case[href$='pingresp.html#case-5.0']")
        .await;
    b.wait_for("location.hash === '#case-5.0' && document.readyState === 'complete'")
        .await;
    b.wait_for("document.querySelector('[id=\"case-5.0\"] details.exchange').open")
        .await;
    // A field name leads to the field table.
    b.click("[id=\"case-5.0-1\"] a.field[href$='#f-CONNECT-keep_alive']")
        .await;
    b.wait_for("location.hash === '#f-CONNECT-keep_alive' && document.readyState === 'complete'")
        .await;
    assert_eq!(
        b.eval("document.querySelector('tr:target code').textContent")
            .await,
        "keep_alive"
    );

    // A search can be linked, and Enter follows the first match.
    b.goto(&url("index.html?q=mqtt-3.1.2-1")).await;
    b.wait_for("document.querySelectorAll('#results li').length > 0")
        .await;
    assert_eq!(
        b.eval("document.getElementById('search').value").await,
        "mqtt-3.1.2-1"
    );
    assert_eq!(
        b.eval("document.querySelector('#results li b').textContent")
            .await,
        "MQTT-3.1.2-1"
    );
    b.click("#search").await;
    b.call(
        "Input.dispatchKeyEvent",
        json!({"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}),
    )
    .await;
    b.wait_for("location.hash === '#MQTT-3.1.2-1' && document.readyState === 'complete'")
        .await;
    assert!(b
        .eval("location.pathname")
        .await
        .as_str()
        .is_some_and(|p| p.ends_with("-3.1.html")));
}
