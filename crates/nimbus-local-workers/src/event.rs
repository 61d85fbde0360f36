//! An invocation's event, encoded as JSON once, by whoever builds it, and spliced as is into the
//! invocation frame of the worker that serves it (and of the next one, if it is retried).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

/// The neutral event of one invocation, as JSON text. Cheap to clone.
#[derive(Clone, PartialEq, Eq)]
pub struct Event(Arc<str>);

impl Event {
    /// Encodes `event`, which should serialize to a JSON object with a `type`.
    pub fn encode<T: Serialize + ?Sized>(event: &T) -> Result<Event, serde_json::Error> {
        serde_json::to_string(event).map(|json| Event(Arc::from(json)))
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        &self.0
    }
}

impl From<&Value> for Event {
    fn from(event: &Value) -> Event {
        Event(Arc::from(event.to_string()))
    }
}

impl From<Value> for Event {
    fn from(event: Value) -> Event {
        Event::from(&event)
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Event").field(&self.json()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_structs_encode_alike() {
        #[derive(Serialize)]
        struct Schedule<'a> {
            r#type: &'a str,
            name: &'a str,
        }
        let value = serde_json::json!({"type": "schedule", "name": "nightly"});
        let typed = Event::encode(&Schedule {
            r#type: "schedule",
            name: "nightly",
        })
        .unwrap();
        assert_eq!(Event::from(&value), typed);
        assert_eq!(typed.json(), r#"{"type":"schedule","name":"nightly"}"#);
    }
}
