//! The queue tools on Azure (`nimbus queue … -p azure`): the Queue Storage REST API of the
//! stage's data storage account, where the deployment put each queue (`names::queue`) and its
//! poison queue (`<queue>-poison`, where the Functions host moves a message that failed
//! `maxDequeueCount` times: the dead-letter queue). The account's queue endpoint and an account
//! SAS for the queue service come from ARM (`primaryEndpoints.queue`, `ListAccountSas`), or
//! from `NIMBUS_AZURE_QUEUE_ENDPOINT` with a SAS signed with `NIMBUS_AZURE_STORAGE_KEY`
//! (Azurite, in tests).
//!
//! - `peek`: Peek Messages (`peekonly=true`, at most 32): nothing is hidden and no dequeue
//!   count goes up.
//! - `redrive`: Get Messages on the poison queue, Put Message of the same text on the queue,
//!   Delete Message from the poison queue, 32 at a time: Queue Storage has no move operation.
//! - `purge`: Clear Messages. `send`: Put Message, base64-encoded as the Functions host reads
//!   queue messages by default. Queue Storage messages carry no attributes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use nimbus_cloud::queues::{Peeked, QueueMessage};

use super::{Azure, StorageService};
use crate::error::AzureError;
use crate::names;

/// The most messages one Peek or Get Messages returns.
const BATCH: u32 = 32;

/// The queues of one stage's data storage account.
pub struct Queues {
    endpoint: String,
    sas: String,
    http: reqwest::Client,
    account: String,
}

impl Azure {
    /// The queue service of the stage's data storage account.
    pub async fn queues(&self) -> Result<Queues, AzureError> {
        let data = self.data_account();
        let (endpoint, sas, account) = self
            .service_access(
                self.queue_override.as_ref(),
                &data,
                StorageService::Queue,
                1,
                || {
                    format!(
                        "the data storage account `{data}` does not exist: deploy first (`nimbus deploy -p azure -s {}`)",
                        self.stage
                    )
                },
            )
            .await?;
        Ok(Queues {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            sas,
            http: reqwest::Client::new(),
            account,
        })
    }
}

impl Queues {
    /// The storage queue of the manifest's queue `name`, or its poison queue.
    pub fn physical(name: &str, dlq: bool) -> String {
        match dlq {
            true => names::poison_queue(name),
            false => names::queue(name),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &str,
        body: Option<String>,
        what: &str,
    ) -> Result<(u16, String), AzureError> {
        let sep = if query.is_empty() { "" } else { "&" };
        let url = format!("{}/{path}?{query}{sep}{}", self.endpoint, self.sas);
        let mut request = self
            .http
            .request(method, &url)
            .header("x-ms-version", crate::sas::VERSION);
        if let Some(b) = body {
            request = request.header("content-type", "application/xml").body(b);
        }
        let error = |status: Option<u16>, message: String| AzureError::Api {
            operation: what.to_string(),
            status,
            code: None,
            message,
        };
        let response = request
            .send()
            .await
            .map_err(|e| error(None, e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| error(Some(status), e.to_string()))?;
        if status == 404 {
            let queue = path.split('/').next().unwrap_or(path);
            return Err(AzureError::Settings {
                message: format!(
                    "queue `{queue}` does not exist in storage account `{}`: is the stage deployed? (`nimbus deploy -p azure`)",
                    self.account
                ),
            });
        }
        if !(200..300).contains(&status) {
            let code = tag(&text, "Code");
            return Err(AzureError::Api {
                operation: what.to_string(),
                status: Some(status),
                code: code.clone(),
                message: tag(&text, "Message").unwrap_or(text),
            });
        }
        Ok((status, text))
    }

    /// Up to `max` (at most 32) messages of queue `name` or its poison queue, left as they are.
    pub async fn peek(&self, name: &str, dlq: bool, max: u32) -> Result<Peeked, AzureError> {
        let queue = Queues::physical(name, dlq);
        let (_, xml) = self
            .call(
                reqwest::Method::GET,
                &format!("{queue}/messages"),
                &format!("peekonly=true&numofmessages={}", max.clamp(1, BATCH)),
                None,
                &format!("peek messages of `{queue}`"),
            )
            .await?;
        let messages = blocks(&xml, "QueueMessage")
            .into_iter()
            .map(|m| QueueMessage {
                id: tag(m, "MessageId").unwrap_or_default(),
                body: decode(&tag(m, "MessageText").unwrap_or_default()),
                attributes: Default::default(),
                receive_count: tag(m, "DequeueCount").and_then(|c| c.parse().ok()),
                sent_at_ms: tag(m, "InsertionTime")
                    .and_then(|t| chrono::DateTime::parse_from_rfc2822(&t).ok())
                    .map(|t| t.timestamp_millis()),
            })
            .collect();
        Ok(Peeked {
            queue: name.to_string(),
            physical: format!("{}/{queue}", self.account),
            dlq,
            messages,
        })
    }

    /// Puts a message (its text base64-encoded) on queue `name`; returns its id.
    pub async fn send(&self, name: &str, body: &str) -> Result<String, AzureError> {
        self.put(&Queues::physical(name, false), &STANDARD.encode(body))
            .await
    }

    async fn put(&self, queue: &str, text: &str) -> Result<String, AzureError> {
        let xml = format!(
            "<QueueMessage><MessageText>{}</MessageText></QueueMessage>",
            escape(text)
        );
        let (_, answer) = self
            .call(
                reqwest::Method::POST,
                &format!("{queue}/messages"),
                "",
                Some(xml),
                &format!("put a message on `{queue}`"),
            )
            .await?;
        Ok(tag(&answer, "MessageId").unwrap_or_default())
    }

    /// Clears queue `name` or its poison queue; returns the storage queue's name.
    pub async fn purge(&self, name: &str, dlq: bool) -> Result<String, AzureError> {
        let queue = Queues::physical(name, dlq);
        self.call(
            reqwest::Method::DELETE,
            &format!("{queue}/messages"),
            "",
            None,
            &format!("clear `{queue}`"),
        )
        .await?;
        Ok(format!("{}/{queue}", self.account))
    }

    /// Moves the poison queue's messages back to queue `name`; returns how many moved.
    pub async fn redrive(&self, name: &str) -> Result<u64, AzureError> {
        let (queue, poison) = (Queues::physical(name, false), Queues::physical(name, true));
        let mut moved = 0;
        loop {
            let (_, xml) = self
                .call(
                    reqwest::Method::GET,
                    &format!("{poison}/messages"),
                    &format!("numofmessages={BATCH}&visibilitytimeout=60"),
                    None,
                    &format!("get messages of `{poison}`"),
                )
                .await?;
            let got = blocks(&xml, "QueueMessage");
            if got.is_empty() {
                return Ok(moved);
            }
            for m in got {
                // The text as it is (already encoded as the host reads it).
                let text = tag(m, "MessageText").unwrap_or_default();
                self.put(&queue, &text).await?;
                let id = tag(m, "MessageId").unwrap_or_default();
                let receipt = tag(m, "PopReceipt").unwrap_or_default();
                self.call(
                    reqwest::Method::DELETE,
                    &format!("{poison}/messages/{id}"),
                    &format!("popreceipt={}", urlencode(&receipt)),
                    None,
                    &format!("delete a moved message from `{poison}`"),
                )
                .await?;
                moved += 1;
            }
        }
    }
}

/// A message's text, base64-decoded when it is base64 of UTF-8 (as the host writes and reads
/// it), else as it is.
fn decode(text: &str) -> String {
    STANDARD
        .decode(text)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| text.to_string())
}

/// The `<name>…</name>` blocks of `xml`, in order.
fn blocks<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// The unescaped text of the first `<name>` element of `xml`.
fn tag(xml: &str, name: &str) -> Option<String> {
    blocks(xml, name).first().map(|t| unescape(t))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_queue_service_xml() {
        let xml = "<?xml version=\"1.0\"?><QueueMessagesList><QueueMessage><MessageId>a</MessageId><DequeueCount>2</DequeueCount><MessageText>eyJhIjogMX0=</MessageText></QueueMessage><QueueMessage><MessageId>b</MessageId><MessageText>x &amp;lt; y</MessageText></QueueMessage></QueueMessagesList>";
        let got = blocks(xml, "QueueMessage");
        assert_eq!(got.len(), 2);
        assert_eq!(tag(got[0], "MessageId").as_deref(), Some("a"));
        assert_eq!(decode(&tag(got[0], "MessageText").unwrap()), "{\"a\": 1}");
        assert_eq!(tag(got[1], "MessageText").as_deref(), Some("x &lt; y"));
        assert_eq!(escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
