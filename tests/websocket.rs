//! docs/reference.md, "WebSockets": a route with `on_open`, `on_message` or `on_close`
//! accepts upgrades; each event is a short run; `ws.send`, `ws.close`, `ws.state`; the
//! protocol's edge cases (fragments, ping/pong, close codes, an oversized frame, an unmasked
//! frame, text that is not UTF-8); `on_close` once per connection; shutdown.

use crate::support;

use std::time::Duration;

use support::websocket::{
    self, connect, connect_with, encode, BINARY, CLOSE, CONTINUATION, PING, PONG, TEXT,
};
use support::{TestApp, DEADLINE};

fn chat_app() -> TestApp {
    TestApp::fixture("websocket")
}

/// Publishes `count` messages of 60 KB on the topic `big`, through `POST /api/room`.
fn publish_big(server: &support::Server, count: usize) {
    let body = "z".repeat(60 * 1024);
    for _ in 0..count {
        let response = server.request(
            "POST",
            "/api/room?topic=big",
            &[("content-type", "text/plain")],
            body.as_bytes(),
        );
        assert_eq!(response.status, 200);
    }
}

/// The chat fixture served by `rhapi dev`, and a socket to it past its welcome.
fn open_chat() -> (TestApp, support::Server, websocket::Socket) {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    let mut socket = connect(server.port, "/api/chat");
    socket.receive_text();
    (app, server, socket)
}

#[test]
fn events_run_in_order_and_state_stays_with_the_connection() {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    let mut socket = connect(server.port, "/api/chat?name=ada");
    let welcome: serde_json::Value = serde_json::from_str(&socket.receive_text()).unwrap();
    assert_eq!(
        welcome,
        serde_json::json!({ "welcome": "ada", "has_id": true })
    );
    for i in 1..=20 {
        socket.send_text(&format!("m{i}"));
    }
    for i in 1..=20 {
        assert_eq!(socket.receive_text(), format!("m{i} #{i}"));
    }
    // A second connection has its own state.
    let mut other = connect(server.port, "/api/chat");
    other.receive_text();
    other.send_text("hi");
    assert_eq!(other.receive_text(), "hi #1");
    socket.send_binary(&[0, 1, 2, 255]);
    let frame = socket.next_frame().unwrap();
    assert_eq!((frame.opcode, frame.payload), (BINARY, vec![0, 1, 2, 255]));
}

#[test]
fn a_client_close_is_answered_and_on_close_runs_once_with_its_code() {
    let (_app, server, mut socket) = open_chat();
    socket.send_text("one");
    socket.receive_text();
    socket.send_close(1000, "bye");
    let close = socket.receive_close();
    assert_eq!(close.close_code(), 1000);
    assert!(
        socket.closed_within(DEADLINE),
        "the server ends the TCP connection"
    );
    server.wait_for_log("closed 1000 'bye' after 1");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(server.log_text().matches("closed 1000").count(), 1);
}

#[test]
fn a_dropped_connection_runs_on_close_with_1006() {
    let (_app, server, mut socket) = open_chat();
    socket.send_text("x");
    socket.receive_text();
    socket.drop_connection();
    server.wait_for_log("closed 1006 '' after 1");
}

#[test]
fn ws_close_sends_the_scripts_code_and_reason() {
    let (_app, server, mut socket) = open_chat();
    socket.send_text("close");
    let close = socket.receive_close();
    assert_eq!(close.close_code(), 4000);
    assert_eq!(close.close_reason(), "asked to close");
    server.wait_for_log("closed 4000 'asked to close' after 1");
}

#[test]
fn an_error_in_an_event_is_logged_with_its_line_and_closes_with_1011() {
    let (_app, server, mut socket) = open_chat();
    socket.send_text("fail");
    assert_eq!(socket.receive_close().close_code(), 1011);
    server.wait_for_log("pages/api/chat.rhai:17:11: Unknown property 'missing_field'");
    server.wait_for_log("in on_message; the socket is closed with 1011");
    server.wait_for_log("closed 1011");
    // A close code a script may not send is an error of the script too.
    let mut socket = connect(server.port, "/api/chat");
    socket.receive_text();
    socket.send_text("bad close");
    assert_eq!(socket.receive_close().close_code(), 1011);
    server.wait_for_log("1006 is not a close code a script may send");
}

#[test]
fn fragmented_messages_are_put_together() {
    let (_app, _server, mut socket) = open_chat();
    socket.send_frame(false, TEXT, b"hel");
    // A ping may come between fragments; it is answered at once.
    socket.send_frame(true, PING, b"mid");
    socket.send_frame(false, CONTINUATION, b"lo ");
    socket.send_frame(true, CONTINUATION, "wörld".as_bytes());
    let pong = socket.next_frame().unwrap();
    assert_eq!((pong.opcode, pong.payload), (PONG, b"mid".to_vec()));
    assert_eq!(socket.receive_text(), "hello wörld #1");
}

#[test]
fn a_ping_gets_a_pong_with_its_payload() {
    let (_app, _server, mut socket) = open_chat();
    socket.send_frame(true, PING, b"are you there");
    let pong = socket.next_frame().unwrap();
    assert_eq!(
        (pong.opcode, pong.payload),
        (PONG, b"are you there".to_vec())
    );
}

#[test]
fn a_message_over_max_message_closes_with_1009() {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    // One frame over the 64 KB default.
    let mut socket = connect(server.port, "/api/chat");
    socket.receive_text();
    socket.send_text(&"x".repeat(64 * 1024 + 1));
    assert_eq!(socket.receive_close().close_code(), 1009);
    server.wait_for_log("closed 1009");
    // Fragments that add up to more than the limit.
    let mut socket = connect(server.port, "/api/chat");
    socket.receive_text();
    let piece = "y".repeat(40 * 1024);
    socket.send_frame(false, TEXT, piece.as_bytes());
    socket.send_frame(true, CONTINUATION, piece.as_bytes());
    assert_eq!(socket.receive_close().close_code(), 1009);
    // The server goes on serving.
    let mut socket = connect(server.port, "/api/chat");
    socket.receive_text();
    socket.send_text("still here");
    assert_eq!(socket.receive_text(), "still here #1");
}

#[test]
fn an_unmasked_client_frame_closes_with_1002() {
    let (_app, server, mut socket) = open_chat();
    socket.send_raw(&encode(true, TEXT, b"not masked", false));
    assert_eq!(socket.receive_close().close_code(), 1002);
    server.wait_for_log("closed 1002");
}

#[test]
fn text_that_is_not_utf8_closes_with_1007() {
    let (_app, _server, mut socket) = open_chat();
    socket.send_frame(true, TEXT, &[0x66, 0xff, 0xfe]);
    assert_eq!(socket.receive_close().close_code(), 1007);
}

#[test]
fn a_route_without_event_functions_answers_an_upgrade_as_a_plain_request() {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    let (status, _, body) = connect_with(server.port, "/api/plain", &[]).refused();
    assert_eq!(status, 200);
    assert_eq!(body, r#"{"plain":true}"#);
    // No route at all: 404, never 101.
    let (status, _, _) = connect_with(server.port, "/api/nowhere", &[]).refused();
    assert_eq!(status, 404);
}

#[test]
fn plain_requests_to_a_socket_route() {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    // Only events: 426 and `Upgrade: websocket`.
    let response = server.get("/api/chat");
    assert_eq!(response.status, 426);
    assert_eq!(response.header("upgrade"), Some("websocket"));
    // A GET of its own answers plain requests; sockets get the events (with env).
    assert_eq!(server.get("/api/both").text(), "plain get");
    let mut socket = connect(server.port, "/api/both");
    socket.send_text("ping");
    assert_eq!(socket.receive_text(), "got ping");
}

#[test]
fn middleware_runs_before_the_upgrade_and_can_refuse_it() {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    let (status, _, body) = connect_with(server.port, "/api/guarded/room", &[]).refused();
    assert_eq!(status, 401);
    assert_eq!(body, r#"{"error":"no key"}"#);
    let mut socket = connect(server.port, "/api/guarded/room?key=open-sesame");
    assert_eq!(socket.receive_text(), "welcome in");
}

#[test]
fn a_bad_handshake_is_a_400() {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    let response = server.raw(
        b"GET /api/chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
    );
    assert_eq!(response.status, 400);
}

#[test]
fn idle_connections_run_no_script_and_leave_the_server_free() {
    let app = chat_app();
    app.write(
        "pages/api/count.rhai",
        "fn on_open(ws, req) { log::info(\"socket opened\"); }\nfn GET(req) { \"free\" }\n",
    );
    let server = app.serve("start", &["--max-in-flight", "8"]);
    let sockets: Vec<websocket::Socket> = (0..200)
        .map(|_| connect(server.port, "/api/count"))
        .collect();
    let deadline = std::time::Instant::now() + DEADLINE;
    while server.log_text().matches("socket opened").count() < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // 200 open sockets do not hold --max-in-flight places: plain requests still pass.
    for _ in 0..20 {
        assert_eq!(server.get("/api/count").status, 200);
    }
    drop(sockets);
}

#[test]
fn shutdown_closes_sockets_with_1001_and_runs_on_close() {
    let app = chat_app();
    let server = app.serve("start", &[]);
    let mut sockets: Vec<websocket::Socket> =
        (0..5).map(|_| connect(server.port, "/api/chat")).collect();
    for socket in &mut sockets {
        socket.receive_text();
    }
    server.signal("TERM");
    for socket in &mut sockets {
        let close = socket.receive_close();
        assert_eq!(close.close_code(), 1001);
    }
    // Every socket closed within the grace, so the process ends without waiting it out.
    let log_server = server;
    log_server.wait_for_log("closed 1001");
    let status = log_server.wait_exit();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_close_frame_is_the_last_frame() {
    let (_app, _server, mut socket) = open_chat();
    socket.send_text("close");
    let close = socket.receive_close();
    assert_eq!(close.opcode, CLOSE);
    // Messages after the close are not answered.
    socket.send_text("after");
    let next = socket.next_frame_within(Duration::from_millis(300));
    assert!(next.is_none(), "{next:?}");
}

#[test]
fn rhapi_test_opens_sockets_in_process() {
    let app = chat_app();
    app.write(
        "tests/chat.test.rhai",
        r#"
fn test_echo_counts_per_connection() {
    let ws = socket("/api/chat?name=bo");
    let welcome = parse_json(ws.receive());
    assert_eq(welcome.welcome, "bo");
    ws.send("a");
    ws.send("b");
    assert_eq(ws.receive(), "a #1");
    assert_eq(ws.receive(), "b #2");
    let blob = blob(3, 7);
    ws.send(blob);
    assert_eq(ws.receive(), blob);
}

fn test_the_server_close_is_seen() {
    let ws = socket("/api/chat");
    ws.receive();
    ws.send("close");
    let closed = ws.receive();
    assert_eq(closed.close, 4000);
    assert_eq(closed.reason, "asked to close");
}

fn test_middleware_refuses() {
    let refused = "";
    try {
        socket("/api/guarded/room");
    } catch (e) {
        refused = e;
    }
    assert(refused.contains("401"), refused);
    let ws = socket("/api/guarded/room?key=open-sesame");
    assert_eq(ws.receive(), "welcome in");
}

fn test_a_wrong_expectation_fails() {
    let ws = socket("/api/chat");
    ws.receive();
    ws.send("x");
    assert_eq(ws.receive(), "not what comes");
}
"#,
    );
    let output = app.run_to_exit("test", &[]);
    let printed = format!("{}{}", output.stdout, output.stderr);
    assert!(printed.contains("3 passed"), "{printed}");
    assert!(printed.contains("1 failed"), "{printed}");
    assert!(
        printed.contains("x #1"),
        "the failure shows what came: {printed}"
    );
}

#[test]
fn publishes_reach_every_subscriber_of_their_topic_once_in_order() {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    let mut a = connect(server.port, "/api/room?topics=lobby");
    let mut b = connect(server.port, "/api/room?topics=lobby,news");
    let mut c = connect(server.port, "/api/room?topics=news");
    for socket in [&mut a, &mut b, &mut c] {
        assert_eq!(socket.receive_text(), "joined");
    }
    // From a route: a JSON body is published as JSON text.
    for i in 0..5 {
        let response = server.post_json("/api/room?topic=lobby", &format!(r#"{{"n":{i}}}"#));
        assert_eq!(response.status, 200);
    }
    // From a socket's event.
    c.send_text("say:news:breaking");
    for i in 0..5 {
        assert_eq!(a.receive_text(), format!(r#"{{"n":{i}}}"#));
        assert_eq!(b.receive_text(), format!(r#"{{"n":{i}}}"#));
    }
    assert_eq!(b.receive_text(), "breaking");
    // c follows only news: its first message is the one it published.
    assert_eq!(c.receive_text(), "breaking");
    // Unsubscribed, a socket gets nothing more of that topic.
    b.send_text("leave:lobby");
    assert_eq!(b.receive_text(), "left");
    server.post_json("/api/room?topic=lobby", r#""after""#);
    server.post_json("/api/room?topic=news", r#""news again""#);
    assert_eq!(a.receive_text(), "after");
    assert_eq!(b.receive_text(), "news again");
}

#[test]
fn a_subscriber_that_does_not_read_is_closed_with_1008_and_delays_no_one() {
    let app = chat_app();
    app.write("rhapi.toml", "[realtime]\nsend_queue = 8\n");
    let server = app.serve("dev", &[]);
    let mut stalled = connect(server.port, "/api/room?topics=big");
    assert_eq!(stalled.receive_text(), "joined");
    let mut reader = connect(server.port, "/api/room?topics=big");
    assert_eq!(reader.receive_text(), "joined");
    let published = 300;
    let reading = std::thread::spawn(move || {
        let mut got = 0;
        for _ in 0..published {
            let text = reader.receive_text();
            assert!(text.starts_with("zzz"), "{text:.20}");
            got += 1;
        }
        got
    });
    publish_big(&server, published);
    // The reader got every publish while the other did not read.
    assert_eq!(reading.join().unwrap(), published);
    // The stalled one, reading at last, finds fewer messages, then the close.
    let mut got = 0;
    let close = loop {
        let frame = stalled.next_frame().expect("a frame");
        match frame.opcode {
            TEXT => got += 1,
            CLOSE => break frame,
            other => panic!("unexpected opcode {other}"),
        }
    };
    assert_eq!(close.close_code(), 1008);
    assert!(
        got < published,
        "{got} of {published} reached the stalled client"
    );
}

#[test]
fn one_event_may_send_more_than_send_queue_to_a_reading_client() {
    let app = chat_app();
    app.write("rhapi.toml", "[realtime]\nsend_queue = 8\n");
    let server = app.serve("dev", &[]);
    let mut socket = connect(server.port, "/api/room?topics=x");
    assert_eq!(socket.receive_text(), "joined");
    socket.send_text("flood");
    for i in 0..1000 {
        assert_eq!(socket.receive_text(), format!("flood {i}"));
    }
}

#[test]
fn routes_marks_socket_routes() {
    let app = chat_app();
    let output = app.run("routes");
    let line = |pattern: &str| {
        output
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("{pattern} ")))
            .unwrap_or_else(|| panic!("{pattern}: {}", output.stdout))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(line("/api/chat"), "WS");
    assert_eq!(line("/api/both"), "GET,WS");
    assert_eq!(line("/api/plain"), "GET");
}

#[test]
fn an_upgrade_from_another_origin_is_refused_unless_cors_allows_it() {
    let app = chat_app();
    let server = app.serve("dev", &[]);
    let host = format!("127.0.0.1:{}", server.port);
    let same = format!("http://{host}");
    let (status, _, _) = connect_with(
        server.port,
        "/api/chat",
        &[("Origin", "https://evil.example")],
    )
    .refused();
    assert_eq!(status, 403);
    let mut socket = connect_with(server.port, "/api/chat", &[("Origin", same.as_str())]).socket();
    assert!(socket.receive_text().contains("welcome"));
    drop(server);
    app.write(
        "rhapi.toml",
        "[cors]\norigins = [\"https://app.example\"]\n",
    );
    let server = app.serve("dev", &[]);
    let mut socket = connect_with(
        server.port,
        "/api/chat",
        &[("Origin", "https://app.example")],
    )
    .socket();
    assert!(socket.receive_text().contains("welcome"));
    let (status, _, _) = connect_with(
        server.port,
        "/api/chat",
        &[("Origin", "https://evil.example")],
    )
    .refused();
    assert_eq!(status, 403);
}

#[test]
fn a_client_that_stopped_reading_is_let_go_at_shutdown() {
    let app = chat_app();
    let server = app.serve("start", &[]);
    let mut stalled = connect(server.port, "/api/room?topics=big");
    assert_eq!(stalled.receive_text(), "joined");
    // Far more than the kernel's buffers hold, fewer than `send_queue`: the socket's send
    // waits for a client that never reads.
    publish_big(&server, 200);
    server.signal("TERM");
    // The waiting send gives up at shutdown: the connection's on_close runs (the bytes
    // already written wait in the kernel, within the 30 s grace, as any response's do).
    server.wait_for_log("room socket closed 1001");
    drop(stalled);
}

/// Two instances on one PostgreSQL: a publish on either reaches the sockets of both, once
/// and in order; a message too big for a NOTIFY too.
#[test]
#[ignore = "needs RHAPI_TEST_POSTGRES_URL (see README)"]
fn a_publish_reaches_sockets_on_every_instance() {
    let db = support::Backend::postgres_from_env();
    let app = chat_app();
    let a = db.serve(&app, "dev", &[]);
    let b = db.serve(&app, "dev", &[]);
    let mut on_a = connect(a.port, "/api/room?topics=x");
    let mut on_b = connect(b.port, "/api/room?topics=x,ready");
    assert_eq!(on_a.receive_text(), "joined");
    assert_eq!(on_b.receive_text(), "joined");
    // Instance b listens once its LISTEN connection is up: publish on a until b hears.
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut k = 0;
    loop {
        a.post_json("/api/room?topic=ready", &format!(r#""r{k}""#));
        k += 1;
        if on_b.next_frame_within(Duration::from_millis(200)).is_some() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "b never heard a publish of a"
        );
    }
    let big = "b".repeat(20_000);
    let sent: Vec<String> = (0..20).map(|i| format!("m{i}")).chain([big]).collect();
    for (i, text) in sent.iter().enumerate() {
        // Alternate instances: each socket still sees one order per publisher.
        let server = if i % 2 == 0 { &a } else { &b };
        let topic_body = serde_json::to_string(text).unwrap();
        let response = server.post_json("/api/room?topic=x", &topic_body);
        assert_eq!(response.status, 200);
    }
    // The same messages reach both sockets, each once (b may still hear late "ready"s).
    let receive_data = |socket: &mut websocket::Socket| {
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let text = socket.receive_text();
            if !text.starts_with('r') {
                got.push(text);
            }
        }
        got
    };
    let mut on_a_got = receive_data(&mut on_a);
    let mut on_b_got = receive_data(&mut on_b);
    let from = |got: &[String], even: bool| -> Vec<String> {
        got.iter()
            .filter(|t| {
                sent.iter()
                    .position(|s| s == *t)
                    .is_some_and(|i| (i % 2 == 0) == even)
            })
            .cloned()
            .collect()
    };
    // Per publisher, in order.
    for got in [&on_a_got, &on_b_got] {
        let even: Vec<String> = sent.iter().step_by(2).cloned().collect();
        let odd: Vec<String> = sent.iter().skip(1).step_by(2).cloned().collect();
        assert_eq!(from(got, true), even);
        assert_eq!(from(got, false), odd);
    }
    on_a_got.sort();
    on_b_got.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(on_a_got, expected);
    assert_eq!(on_b_got, expected);
    // Nothing more: no message came twice.
    assert!(on_a.next_frame_within(Duration::from_millis(300)).is_none());
}

#[test]
fn a_client_that_answers_no_ping_is_dropped_and_one_that_does_is_kept() {
    let app = chat_app();
    app.write(
        "rhapi.toml",
        "[realtime]\nping_interval = \"200ms\"\npong_timeout = \"500ms\"\n",
    );
    let server = app.serve("dev", &[]);
    // A silent client: pinged, never answers, counted as dropped (1006).
    let mut silent = connect(server.port, "/api/chat?name=silent");
    silent.receive_text();
    let ping = silent.next_frame().expect("a ping");
    assert_eq!(ping.opcode, PING);
    server.wait_for_log("closed 1006 '' after 0");
    // A live one answers its pings (receive_text answers them) and stays open past the
    // same time, then still echoes.
    let mut live = connect(server.port, "/api/chat?name=live");
    live.receive_text();
    let until = std::time::Instant::now() + Duration::from_millis(1500);
    let mut pongs = 0;
    while std::time::Instant::now() < until {
        if let Some(frame) = live.next_frame_within(Duration::from_millis(100)) {
            assert_eq!(frame.opcode, PING, "{frame:?}");
            live.send_frame(true, PONG, &frame.payload);
            pongs += 1;
        }
    }
    assert!(pongs >= 3, "{pongs} pings in 1.5 s");
    live.send_text("still");
    assert_eq!(live.receive_text(), "still #1");
}
