//! Publishes across instances: what a hub hands to the other instances of its app.

use super::Message;

/// Where a hub's publishes go to the other instances (PostgreSQL); nowhere yet.
#[derive(Default)]
pub struct Remote;

impl Remote {
    /// Hands a publish to the other instances, if any; never waits.
    pub fn send(&self, _topic: &str, _message: &Message) {}
}
