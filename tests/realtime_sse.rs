//! docs/reference.md, "Publish and subscribe": `res.subscribe(topics)` answers with an
//! event stream of every `realtime::publish` on its topics, in order, each once; a
//! subscriber that does not read is cut off without holding the others up; idle event
//! streams send keep-alive comments (so a client that has gone is noticed); SIGTERM ends
//! subscribed streams at once; a message over `[realtime] max_message` is refused; on
//! PostgreSQL a publish reaches the subscribers of every instance.

use crate::support;

use support::{on_both, Backend, Server, Streamed, TestApp};

/// A subscriber of `?topics=a,b`, and a publisher of `#{ topic, items }` (each item one
/// publish) or of `?topic=&size=&i=` (one publish of `i:` and `size` more bytes).
fn pubsub_app(toml: &str) -> TestApp {
    let app = TestApp::new();
    app.write(
        "pages/api/feed.rhai",
        "fn GET(req, res) {\n    res.subscribe(req.query.topics.split(\",\"));\n}\n",
    );
    app.write(
        "pages/api/publish.rhai",
        r#"fn POST(req) {
    for item in req.body.items {
        realtime::publish(req.body.topic, item);
    }
    #{ published: req.body.items.len() }
}

fn GET(req) {
    let body = "";
    body.pad(parse_int(req.query.size), 'x');
    realtime::publish(req.query.topic, req.query.i + ":" + body);
    "ok"
}
"#,
    );
    app.write("rhapi.toml", toml);
    app
}

/// The next event of `stream` that is not a keep-alive comment; `None` at its end (or
/// when none came within the deadline).
fn next_event(stream: &mut Streamed) -> Option<String> {
    let started = std::time::Instant::now();
    while started.elapsed() < support::DEADLINE {
        let chunk = String::from_utf8(stream.next_chunk()?).expect("UTF-8");
        if !chunk.starts_with(':') {
            return Some(chunk);
        }
    }
    None
}

fn publish(server: &Server, topic: &str, items: &str) {
    let body = format!("{{\"topic\":\"{topic}\",\"items\":{items}}}");
    let response = server.post_json("/api/publish", &body);
    assert_eq!(response.status, 200, "{}", response.text());
}

#[test]
fn subscribers_get_each_publish_of_their_topics_once_in_order() {
    let app = pubsub_app("");
    let server = app.serve("dev", &[]);
    let mut only_a = server.open_stream("GET", "/api/feed?topics=a");
    let mut a_and_b = server.open_stream("GET", "/api/feed?topics=a,b,a");
    assert_eq!(only_a.status, 200);
    assert_eq!(only_a.header("content-type"), Some("text/event-stream"));
    assert_eq!(only_a.header("cache-control"), Some("no-cache"));
    publish(&server, "a", r#"["one", {"n": 1}, [true, null], 7]"#);
    publish(&server, "b", r#"["two\nlines"]"#);
    publish(&server, "c", r#"["nobody"]"#);
    publish(&server, "a", r#"["end"]"#);
    let a_events: Vec<String> = (0..5).filter_map(|_| next_event(&mut only_a)).collect();
    assert_eq!(
        a_events,
        [
            "data: one\n\n",
            "data: {\"n\":1}\n\n",
            "data: [true,null]\n\n",
            "data: 7\n\n",
            "data: end\n\n"
        ]
    );
    let both: Vec<String> = (0..6).filter_map(|_| next_event(&mut a_and_b)).collect();
    assert_eq!(
        both,
        [
            "data: one\n\n",
            "data: {\"n\":1}\n\n",
            "data: [true,null]\n\n",
            "data: 7\n\n",
            "data: two\ndata: lines\n\n",
            "data: end\n\n"
        ],
        "a topic given twice is followed once"
    );
}

#[test]
fn a_job_publishes_too() {
    let app = pubsub_app("");
    app.write(
        "jobs/announce.rhai",
        "fn run(payload) {\n    realtime::publish(payload.topic, payload.text);\n}\n",
    );
    app.write(
        "pages/api/announce.rhai",
        "fn POST(req) {\n    #{ id: jobs::enqueue(\"announce\", req.body) }\n}\n",
    );
    let server = app.serve("start", &[]);
    let mut feed = server.open_stream("GET", "/api/feed?topics=news");
    let response = server.post_json("/api/announce", r#"{"topic":"news","text":"from a job"}"#);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        next_event(&mut feed).as_deref(),
        Some("data: from a job\n\n")
    );
}

#[test]
fn publishes_from_concurrent_requests_keep_each_publishers_order() {
    let app = pubsub_app("");
    let server = app.serve("start", &[]);
    let mut feed = server.open_stream("GET", "/api/feed?topics=t");
    std::thread::scope(|scope| {
        for p in 0..4 {
            let server = &server;
            scope.spawn(move || {
                let items: Vec<String> = (0..50).map(|i| format!("\"{p}.{i}\"")).collect();
                publish(server, "t", &format!("[{}]", items.join(",")));
            });
        }
    });
    let mut next = [0; 4];
    for _ in 0..200 {
        let event = next_event(&mut feed).expect("an event");
        let data = event.trim_start_matches("data: ").trim_end();
        let (p, i) = data.split_once('.').expect("p.i");
        let (p, i): (usize, usize) = (p.parse().unwrap(), i.parse().unwrap());
        assert_eq!(i, next[p], "publisher {p} out of order");
        next[p] += 1;
    }
    assert_eq!(next, [50; 4]);
}

#[test]
fn a_subscriber_that_does_not_read_is_cut_off_and_the_others_get_everything() {
    let app = pubsub_app("[realtime]\nsend_queue = 16\n");
    let server = app.serve("start", &[]);
    // Connected, its head read, and then never read until the end: the socket's buffers
    // fill, then its queue of 16.
    let mut slow = server.open_stream("GET", "/api/feed?topics=t");
    let mut fast = server.open_stream("GET", "/api/feed?topics=t");
    let total = 400;
    let size = 60_000;
    for i in 0..total {
        let response = server.get(&format!("/api/publish?topic=t&size={size}&i={i}"));
        assert_eq!(response.status, 200, "{}", response.text());
        let event = next_event(&mut fast).expect("the reading subscriber gets every publish");
        assert!(event.starts_with(&format!("data: {i}:xxx")), "{i}");
        assert_eq!(
            event.len(),
            "data: :\n\n".len() + i.to_string().len() + size
        );
    }
    // The slow one has what the socket held when it was cut off, and then its end.
    let mut got = 0;
    let mut last = None;
    while let Some(event) = next_event(&mut slow) {
        let i: usize = event["data: ".len()..]
            .split(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            Some(i),
            last.map_or(Some(0), |l: usize| Some(l + 1)),
            "in order"
        );
        last = Some(i);
        got += 1;
    }
    assert!(slow.ended, "the server ended the cut-off stream");
    assert!(got < total, "cut off: {got} of {total}");
    // Those publishing were never held up, and new subscribers are served as before.
    let mut again = server.open_stream("GET", "/api/feed?topics=t");
    publish(&server, "t", r#"["after"]"#);
    assert_eq!(next_event(&mut again).as_deref(), Some("data: after\n\n"));
}

#[test]
fn idle_event_streams_send_keep_alive_comments() {
    let app = pubsub_app("[realtime]\nkeep_alive = \"100ms\"\n");
    app.write(
        "pages/api/events.rhai",
        "fn GET(req, res) {\n    res.event(#{ data: \"hi\" });\n    sleep(700);\n    res.event(#{ data: \"bye\" });\n}\n",
    );
    app.write(
        "pages/api/text.rhai",
        "fn GET(req, res) {\n    res.write(\"a\");\n    sleep(400);\n    res.write(\"b\");\n}\n",
    );
    let server = app.serve("dev", &[]);
    let mut feed = server.open_stream("GET", "/api/feed?topics=quiet");
    assert_eq!(feed.next_chunk().as_deref(), Some(&b": keep-alive\n\n"[..]));
    assert_eq!(feed.next_chunk().as_deref(), Some(&b": keep-alive\n\n"[..]));
    // A script's event stream too, between its events.
    let mut events = server.open_stream("GET", "/api/events");
    let chunks: Vec<String> = std::iter::from_fn(|| events.next_chunk())
        .map(|c| String::from_utf8(c).unwrap())
        .collect();
    assert_eq!(chunks.first().map(String::as_str), Some("data: hi\n\n"));
    assert_eq!(chunks.last().map(String::as_str), Some("data: bye\n\n"));
    let comments = chunks.iter().filter(|c| *c == ": keep-alive\n\n").count();
    assert!(comments >= 2, "{chunks:?}");
    assert_eq!(comments + 2, chunks.len(), "{chunks:?}");
    // Not a stream of another type: a comment would corrupt its body.
    assert_eq!(server.open_stream("GET", "/api/text").rest(), "ab");
}

#[test]
fn a_script_stream_whose_client_left_is_noticed_by_the_keep_alive() {
    let app = pubsub_app("[realtime]\nkeep_alive = \"100ms\"\n");
    // Writes only when something changes, which never happens: only the keep-alive can
    // find that the client has gone.
    app.write(
        "pages/api/watch.rhai",
        r#"const CONFIG = #{ timeout: "120s" };

fn GET(req, res) {
    res.event(#{ data: "watching" });
    try {
        loop {
            sleep(5000);
            if cache::get("changed") != () {
                res.event(#{ data: "changed" });
            }
        }
    } catch (err) {
        cache::set("watch ended", `${err}`);
    }
}
"#,
    );
    app.write(
        "pages/api/ended.rhai",
        "fn GET() {\n    cache::get(\"watch ended\") ?? \"running\"\n}\n",
    );
    let server = app.serve("start", &[]);
    let mut watch = server.open_stream("GET", "/api/watch");
    assert_eq!(
        watch.next_chunk().as_deref(),
        Some(&b"data: watching\n\n"[..])
    );
    assert_eq!(server.get("/api/ended").text(), "running");
    drop(watch);
    let ended = server.poll_until("/api/ended", |r| r.text() != "running");
    assert_eq!(ended.text(), "client closed");
}

#[test]
fn sigterm_ends_subscribed_streams_at_once() {
    let app = pubsub_app("");
    let server = app.serve("start", &[]);
    let mut feed = server.open_stream("GET", "/api/feed?topics=t");
    publish(&server, "t", r#"["before"]"#);
    assert_eq!(next_event(&mut feed).as_deref(), Some("data: before\n\n"));
    server.signal("TERM");
    // The stream's read timeout (20 s) is under the 30 s grace: only an end sent by the
    // server makes `ended` true.
    assert_eq!(next_event(&mut feed), None);
    assert!(feed.ended, "the server ended the stream");
    let log = server.log_text();
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(!log.contains("ERROR"), "{log}");
}

#[test]
fn a_message_over_max_message_is_a_script_error() {
    let app = pubsub_app("[realtime]\nmax_message = \"1kb\"\n");
    app.write(
        "pages/api/big.rhai",
        r#"fn GET(req) {
    let text = "";
    text.pad(1025, 'x');
    let list = [];
    for i in 0..300 { list.push(i); }
    let errors = [];
    for value in [text, list, blob(2000)] {
        try { realtime::publish("t", value); errors.push("sent"); } catch (err) { errors.push(err); }
    }
    realtime::publish("t", text.sub_string(0, 1024));
    errors
}
"#,
    );
    let server = app.serve("dev", &[]);
    let mut feed = server.open_stream("GET", "/api/feed?topics=t");
    let response = server.get("/api/big");
    assert_eq!(response.status, 200, "{}", response.text());
    let errors = response.json();
    for error in errors.as_array().unwrap() {
        let error = error.as_str().unwrap();
        assert!(
            error.contains("larger than [realtime] max_message (1.0 KB)"),
            "{error}"
        );
    }
    assert_eq!(errors.as_array().unwrap().len(), 3);
    // Only the message of 1 KB went out.
    let event = next_event(&mut feed).unwrap();
    assert_eq!(event.len(), "data: \n\n".len() + 1024);
}

#[test]
fn bad_topics_are_script_errors() {
    let app = TestApp::new();
    app.write(
        "pages/api/bad.rhai",
        r#"fn GET(req, res) {
    let long = "";
    long.pad(257, 't');
    let errors = [];
    for topics in [42, [], ["a", 1], "", long] {
        try { res.subscribe(topics); errors.push("subscribed"); } catch (err) { errors.push(err); }
    }
    for topic in ["", long] {
        try { realtime::publish(topic, 1); errors.push("published"); } catch (err) { errors.push(err); }
    }
    res.json(errors);
}
"#,
    );
    let server = app.serve("dev", &[]);
    let response = server.get("/api/bad");
    assert_eq!(response.status, 200, "{}", response.text());
    let errors: Vec<String> = response
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap().to_string())
        .collect();
    let expected = [
        "topics must be a string or an array of strings, not i64",
        "give at least one topic",
        "topics must be a string or an array of strings",
        "a topic must not be empty",
        "a topic is at most 256 bytes; this one has 257",
        "realtime::publish: a topic must not be empty",
        "realtime::publish: a topic is at most 256 bytes",
    ];
    assert_eq!(errors.len(), expected.len(), "{errors:?}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(error.contains(expected), "{error} / {expected}");
    }
}

/// Two instances of one app on one database: on PostgreSQL a publish on either reaches
/// the subscribers of both, a long one (over PostgreSQL's 8000-byte notification) too, once
/// each and in order. On SQLite each instance keeps its publishes.
fn a_publish_reaches_every_instance(db: Backend) {
    let app = pubsub_app("");
    let first = db.serve(&app, "start", &[]);
    let second = db.serve(&app, "start", &[]);
    if db.is_pg() {
        for server in [&first, &second] {
            server.wait_for_log_line("listening for other instances' publishes", |l| {
                l.contains("realtime: sharing publishes with the other instances")
            });
        }
    }
    let mut here = first.open_stream("GET", "/api/feed?topics=t");
    let mut there = second.open_stream("GET", "/api/feed?topics=t");
    let long = 20_000;
    for (i, size) in [(1, 10), (2, long), (3, 10)] {
        let response = first.get(&format!("/api/publish?topic=t&size={size}&i={i}"));
        assert_eq!(response.status, 200, "{}", response.text());
    }
    // Events shortened for the messages: `1:x*10`.
    let short = |event: Option<String>| {
        let event = event?;
        let data = event.strip_prefix("data: ")?.strip_suffix("\n\n")?;
        let xs = data.chars().filter(|&c| c == 'x').count();
        Some(format!("{}x*{xs}", data.trim_end_matches('x')))
    };
    let from_first = ["1:x*10".to_string(), format!("2:x*{long}"), "3:x*10".into()];
    for expected in &from_first {
        assert_eq!(short(next_event(&mut here)).as_ref(), Some(expected));
        if db.is_pg() {
            assert_eq!(short(next_event(&mut there)).as_ref(), Some(expected));
        }
    }
    publish(&second, "t", r#"["from the second"]"#);
    assert_eq!(
        next_event(&mut there).as_deref(),
        Some("data: from the second\n\n")
    );
    if db.is_pg() {
        assert_eq!(
            next_event(&mut here).as_deref(),
            Some("data: from the second\n\n")
        );
    }
    // Once each: the next event is a new publish, not a late copy of one before.
    publish(&first, "t", r#"["end"]"#);
    assert_eq!(next_event(&mut here).as_deref(), Some("data: end\n\n"));
    if db.is_pg() {
        assert_eq!(next_event(&mut there).as_deref(), Some("data: end\n\n"));
    }
}

on_both!(a_publish_reaches_every_instance);
