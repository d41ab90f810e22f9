//! The local registry of subscribers per topic, and each subscriber's bounded queue.
//!
//! Locks, always taken in this order and held for a few pointer moves: a subscriber's own
//! topic set, then the hub's topic map, then a subscriber's queue. A publish reads the map
//! and pushes one `Arc` into each queue: it never waits for a subscriber, and a subscriber
//! whose queue is full is cut off (its queue emptied and its topics left) instead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};

use super::{Message, Published, MAX_TOPIC, MAX_TOPICS};
use crate::settings::RealtimeSettings;

/// The publish/subscribe hub of one app: its local subscribers by topic.
pub struct Hub {
    topics: RwLock<HashMap<Arc<str>, Vec<Arc<Slot>>>>,
    next_id: AtomicU64,
    /// Subscribers neither dropped nor cut off.
    live: AtomicUsize,
    /// Where publishes go to the other instances (PostgreSQL), once set.
    pub(super) remote: super::Remote,
    settings: arc_swap::ArcSwap<RealtimeSettings>,
}

/// One subscriber, shared by its handles, its inbox and the topics it follows.
struct Slot {
    id: u64,
    capacity: usize,
    queue: Mutex<Queue>,
    topics: Mutex<Topics>,
}

struct Queue {
    items: VecDeque<Arc<Published>>,
    /// The inbox waiting for the next publish.
    waker: Option<Waker>,
    /// Cut off: its queue was full. Nothing more is queued.
    cut: bool,
}

struct Topics {
    names: HashSet<Arc<str>>,
    /// Left the hub (cut off, or its inbox dropped): it follows nothing from now on.
    closed: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for Hub {
    fn default() -> Self {
        Hub {
            topics: RwLock::default(),
            next_id: AtomicU64::new(0),
            live: AtomicUsize::new(0),
            remote: super::Remote::default(),
            settings: arc_swap::ArcSwap::from_pointee(RealtimeSettings::default()),
        }
    }
}

impl Hub {
    /// A local subscriber whose queue holds at most `queue` publishes (at least 1).
    pub fn subscriber(self: &Arc<Self>, queue: usize) -> (Subscriber, Inbox) {
        let capacity = queue.max(1);
        let slot = Arc::new(Slot {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            capacity,
            queue: Mutex::new(Queue {
                items: VecDeque::new(),
                waker: None,
                cut: false,
            }),
            topics: Mutex::new(Topics {
                names: HashSet::new(),
                closed: false,
            }),
        });
        self.live.fetch_add(1, Ordering::Relaxed);
        let subscriber = Subscriber {
            hub: Arc::clone(self),
            slot: Arc::clone(&slot),
        };
        let inbox = Inbox {
            hub: Arc::clone(self),
            slot,
        };
        (subscriber, inbox)
    }

    /// Sends to every local subscriber of `topic` now, and to other instances (PostgreSQL).
    /// Never blocks.
    pub fn publish(&self, topic: &str, message: Message) {
        self.remote.send(topic, &message);
        self.deliver(topic, message);
    }

    /// Local subscribers right now (for tests/metrics).
    pub fn subscribers(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }

    /// The `[realtime]` settings in force (set at each load of `rhapi.toml`).
    pub fn settings(&self) -> Arc<RealtimeSettings> {
        self.settings.load_full()
    }

    /// Applies `rhapi.toml`'s `[realtime]` (to connections opened from now on).
    pub fn configure(&self, settings: &RealtimeSettings) {
        self.settings.store(Arc::new(settings.clone()));
    }

    /// Queues `message` for every local subscriber of `topic`; cuts off those whose queue
    /// is full.
    pub(super) fn deliver(&self, topic: &str, message: Message) {
        let mut full = Vec::new();
        {
            let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
            let Some((name, slots)) = topics.get_key_value(topic) else {
                return;
            };
            let published = Arc::new(Published::new(Arc::clone(name), message));
            for slot in slots {
                if !slot.push(&published) {
                    full.push(Arc::clone(slot));
                }
            }
        }
        for slot in full {
            self.leave(&slot);
        }
    }

    /// Takes `slot` out of every topic, once.
    fn leave(&self, slot: &Slot) {
        let names = {
            let mut topics = lock(&slot.topics);
            if topics.closed {
                return;
            }
            topics.closed = true;
            std::mem::take(&mut topics.names)
        };
        self.live.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.topics.write().unwrap_or_else(PoisonError::into_inner);
        for name in names {
            remove(&mut map, &name, slot.id);
        }
    }
}

/// Takes the subscriber `id` out of `topic`, and the topic out of the map once nobody
/// follows it.
fn remove(map: &mut HashMap<Arc<str>, Vec<Arc<Slot>>>, topic: &str, id: u64) {
    if let Some(slots) = map.get_mut(topic) {
        slots.retain(|slot| slot.id != id);
        if slots.is_empty() {
            map.remove(topic);
        }
    }
}

impl Slot {
    /// Queues `published`; `false` when the queue was full (it is now cut off and empty).
    fn push(&self, published: &Arc<Published>) -> bool {
        let (waker, dropped) = {
            let mut queue = lock(&self.queue);
            if queue.cut {
                return true;
            }
            if queue.items.len() >= self.capacity {
                queue.cut = true;
                (queue.waker.take(), std::mem::take(&mut queue.items))
            } else {
                queue.items.push_back(Arc::clone(published));
                (queue.waker.take(), VecDeque::new())
            }
        };
        let delivered = dropped.is_empty();
        drop(dropped);
        if let Some(waker) = waker {
            waker.wake();
        }
        delivered
    }
}

/// The handle scripts use to choose topics (cheap to clone; Send + Sync).
#[derive(Clone)]
pub struct Subscriber {
    hub: Arc<Hub>,
    slot: Arc<Slot>,
}

impl Subscriber {
    /// Unique among the hub's subscribers.
    pub fn id(&self) -> u64 {
        self.slot.id
    }

    /// Follows `topic` from now on (again: nothing changes). Err, a message for the script:
    /// an empty or too long topic, or too many topics. A subscriber that was cut off or
    /// whose inbox is gone follows nothing, silently.
    pub fn subscribe(&self, topic: &str) -> Result<(), String> {
        check_topic(topic).map_err(|err| format!("subscribe: {err}"))?;
        let mut topics = lock(&self.slot.topics);
        if topics.closed || topics.names.contains(topic) {
            return Ok(());
        }
        if topics.names.len() >= MAX_TOPICS {
            return Err(format!(
                "subscribe: at most {MAX_TOPICS} topics at once; unsubscribe from one first"
            ));
        }
        let mut map = self
            .hub
            .topics
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let name = match map.get_key_value(topic) {
            Some((name, _)) => Arc::clone(name),
            None => Arc::from(topic),
        };
        map.entry(Arc::clone(&name))
            .or_default()
            .push(Arc::clone(&self.slot));
        topics.names.insert(name);
        Ok(())
    }

    /// Stops following `topic` (not followed: nothing changes).
    pub fn unsubscribe(&self, topic: &str) {
        let mut topics = lock(&self.slot.topics);
        if topics.names.remove(topic) {
            let mut map = self
                .hub
                .topics
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            remove(&mut map, topic, self.slot.id);
        }
    }
}

/// Why `topic` cannot be a topic, for the script.
pub fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() {
        return Err("a topic must not be empty".into());
    }
    if topic.len() > MAX_TOPIC {
        return Err(format!(
            "a topic is at most {MAX_TOPIC} bytes; this one has {}",
            topic.len()
        ));
    }
    Ok(())
}

/// The receiving end, owned by the connection's task. Dropping it removes the subscriber
/// from every topic.
pub struct Inbox {
    hub: Arc<Hub>,
    slot: Arc<Slot>,
}

impl Inbox {
    /// The next publish; `None` once the subscriber was cut off because its queue was full
    /// (its queued publishes dropped).
    pub async fn next(&mut self) -> Option<Arc<Published>> {
        std::future::poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`Inbox::next`] as a poll, for a stream.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Arc<Published>>> {
        let mut queue = lock(&self.slot.queue);
        if queue.cut {
            return Poll::Ready(None);
        }
        match queue.items.pop_front() {
            Some(published) => Poll::Ready(Some(published)),
            None => {
                if !queue
                    .waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    queue.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }

    /// Whether the subscriber was cut off (its queue was full), without taking anything:
    /// a WebSocket whose send is stalled looks at it.
    pub fn is_cut_off(&self) -> bool {
        lock(&self.slot.queue).cut
    }

    /// The handle of this inbox's subscriber.
    pub fn subscriber(&self) -> Subscriber {
        Subscriber {
            hub: Arc::clone(&self.hub),
            slot: Arc::clone(&self.slot),
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.hub.leave(&self.slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Message {
        Message::Text(s.into())
    }

    fn ready(inbox: &mut Inbox) -> Option<Option<String>> {
        let waker = futures_util::task::noop_waker();
        match inbox.poll_next(&mut Context::from_waker(&waker)) {
            Poll::Ready(Some(p)) => match &p.message {
                Message::Text(t) => Some(Some(format!("{}:{t}", p.topic))),
                Message::Binary(_) => Some(Some("binary".into())),
            },
            Poll::Ready(None) => Some(None),
            Poll::Pending => None,
        }
    }

    #[test]
    fn each_subscriber_gets_each_publish_of_its_topics_once_in_order() {
        let hub = Arc::new(Hub::default());
        let (a, mut a_in) = hub.subscriber(8);
        let (b, mut b_in) = hub.subscriber(8);
        a.subscribe("x").unwrap();
        a.subscribe("x").unwrap();
        a.subscribe("y").unwrap();
        b.subscribe("y").unwrap();
        hub.publish("x", text("1"));
        hub.publish("y", text("2"));
        hub.publish("z", text("3"));
        assert_eq!(ready(&mut a_in), Some(Some("x:1".into())));
        assert_eq!(ready(&mut a_in), Some(Some("y:2".into())));
        assert_eq!(ready(&mut a_in), None, "once each, nothing of z");
        assert_eq!(ready(&mut b_in), Some(Some("y:2".into())));
        assert_eq!(ready(&mut b_in), None);
        a.unsubscribe("x");
        hub.publish("x", text("4"));
        assert_eq!(ready(&mut a_in), None);
        assert_ne!(a.id(), b.id());
    }

    #[test]
    fn a_full_queue_cuts_its_subscriber_off_and_not_the_others() {
        let hub = Arc::new(Hub::default());
        let (slow, mut slow_in) = hub.subscriber(2);
        let (fast, mut fast_in) = hub.subscriber(2);
        slow.subscribe("t").unwrap();
        fast.subscribe("t").unwrap();
        assert_eq!(hub.subscribers(), 2);
        for i in 0..5 {
            hub.publish("t", text(&i.to_string()));
            assert_eq!(ready(&mut fast_in), Some(Some(format!("t:{i}"))));
        }
        assert_eq!(
            ready(&mut slow_in),
            Some(None),
            "cut off, its queue dropped"
        );
        assert_eq!(hub.subscribers(), 1);
        assert_eq!(
            hub.topics.read().unwrap()["t"].len(),
            1,
            "out of its topics"
        );
        slow.subscribe("u").unwrap();
        assert!(
            !hub.topics.read().unwrap().contains_key("u"),
            "follows nothing"
        );
        drop(fast_in);
        assert_eq!(hub.subscribers(), 0);
        assert!(hub.topics.read().unwrap().is_empty(), "every topic left");
        drop(slow_in);
        assert_eq!(hub.subscribers(), 0);
    }

    #[test]
    fn topics_are_bounded() {
        let hub = Arc::new(Hub::default());
        let (s, _inbox) = hub.subscriber(1);
        assert!(s.subscribe("").is_err());
        assert!(s.subscribe(&"a".repeat(MAX_TOPIC + 1)).is_err());
        s.subscribe(&"a".repeat(MAX_TOPIC)).unwrap();
        for i in 1..MAX_TOPICS {
            s.subscribe(&i.to_string()).unwrap();
        }
        let err = s.subscribe("one more").unwrap_err();
        assert!(err.contains("at most 1000 topics"), "{err}");
        s.subscribe("1").unwrap();
    }

    #[test]
    fn a_waiting_inbox_wakes_at_a_publish() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let hub = Arc::new(Hub::default());
        let (s, mut inbox) = hub.subscriber(4);
        s.subscribe("t").unwrap();
        let publisher = Arc::clone(&hub);
        let got = runtime.block_on(async move {
            let waiting = tokio::spawn(async move { inbox.next().await });
            tokio::task::yield_now().await;
            publisher.publish("t", text("hi"));
            waiting.await.unwrap()
        });
        assert_eq!(got.unwrap().message, text("hi"));
    }

    #[test]
    fn publishers_on_threads_keep_their_order_for_every_subscriber() {
        let hub = Arc::new(Hub::default());
        let inboxes: Vec<Inbox> = (0..4)
            .map(|_| {
                let (s, inbox) = hub.subscriber(10_000);
                s.subscribe("t").unwrap();
                inbox
            })
            .collect();
        let threads: Vec<_> = (0..3)
            .map(|p| {
                let hub = Arc::clone(&hub);
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        hub.publish("t", text(&format!("{p}.{i}")));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        for mut inbox in inboxes {
            let mut next = [0; 3];
            while let Some(Some(got)) = ready(&mut inbox) {
                let (p, i) = got["t:".len()..].split_once('.').unwrap();
                let p: usize = p.parse().unwrap();
                assert_eq!(i.parse::<i32>().unwrap(), next[p], "in order, each once");
                next[p] += 1;
            }
            assert_eq!(next, [1000; 3]);
        }
    }
}
