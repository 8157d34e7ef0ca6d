//! Exports as files: the contacts a list query selects, the messages sent
//! and received, and the contact-form messages, as CSV streamed page by
//! page (never built in memory). Synchronous exports stop at
//! [`SYNC_ROWS`] rows.

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use futures::{stream, Stream, StreamExt};

use crate::domain::contact::Contact;
use crate::domain::export::{self, Column, BOM};
use crate::domain::list::Subscription;
use crate::domain::message::Message;
use crate::domain::submission::{MessageStatus, Record};
use crate::store::Store;
use crate::usecases::contacts::{self, SortOrder};
use crate::usecases::filter::ContactFilter;
use crate::usecases::messages::{self, MessageFilter};
use crate::usecases::{submissions, Page};
use crate::{Error, Result};

/// Rows a synchronous export writes at most, by default (`EXPORT_SYNC_ROWS`);
/// larger audiences go to an asynchronous export.
pub const SYNC_ROWS: usize = 10_000;
/// Contacts (or messages) read a page.
const PAGE: usize = 200;
/// Contacts whose list memberships are read at once.
const MEMBERSHIP_READS: usize = 8;

/// The contacts an export selects, and how it writes them.
pub struct ContactExport {
    pub q: Option<String>,
    pub filter: ContactFilter,
    pub order: Option<SortOrder>,
    pub columns: Vec<Column>,
    pub bom: bool,
}

/// Whether the query selects more than `cap` contacts.
pub async fn over_cap(store: &Store, pid: &str, e: &ContactExport, cap: usize) -> Result<bool> {
    if e.q.is_none() && e.filter.is_empty() {
        return Ok(store.count_contacts(pid).await? > cap as u64);
    }
    let ids = contacts::select_ids(store, pid, e.q.as_deref(), &e.filter, cap + 1).await?;
    Ok(ids.len() > cap)
}

/// One page of rows (cells already made safe) and where the next starts.
type Rows = (Vec<Vec<String>>, Option<String>);

/// A CSV file streamed from pages: the header row, then each page's rows,
/// up to `cap` rows. RFC 4180 quoting (the `csv` crate); optional UTF-8 BOM.
fn csv_stream<F, Fut>(header: Vec<String>, bom: bool, cap: usize, fetch: F) -> impl Stream<Item = Result<Bytes>> + Send
where
    F: Fn(Option<String>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Rows>> + Send,
{
    let fetch = Arc::new(fetch);
    let head = stream::once(async move {
        let mut out = if bom { BOM.to_vec() } else { Vec::new() };
        out.extend(csv_lines(&[header])?);
        Ok(Bytes::from(out))
    });
    // State: the cursor of the next page (None after the last), rows written.
    let body = stream::unfold((Some(None::<String>), 0usize), move |(next, written)| {
        let fetch = fetch.clone();
        async move {
            let cursor = next?;
            if written >= cap {
                return None;
            }
            match fetch(cursor).await {
                Err(e) => Some((Err(e), (None, written))),
                Ok((mut rows, more)) => {
                    rows.truncate(cap - written);
                    let written = written + rows.len();
                    let next = more.filter(|_| written < cap).map(Some);
                    Some((csv_lines(&rows).map(Bytes::from), (next, written)))
                }
            }
        }
    });
    head.chain(body)
}

fn csv_lines(rows: &[Vec<String>]) -> Result<Vec<u8>> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    for row in rows {
        w.write_record(row).map_err(Error::internal)?;
    }
    w.into_inner().map_err(Error::internal)
}

/// The contacts of `e`, as CSV, at most `cap` rows.
pub fn contacts_csv(
    store: Store,
    pid: String,
    e: ContactExport,
    cap: usize,
) -> impl Stream<Item = Result<Bytes>> + Send {
    let header = e.columns.iter().map(Column::header).collect();
    let bom = e.bom;
    let e = Arc::new(e);
    csv_stream(header, bom, cap, move |cursor| {
        let (store, pid, e) = (store.clone(), pid.clone(), e.clone());
        async move {
            let page = contacts::query(
                &store,
                &pid,
                e.q.as_deref(),
                &e.filter,
                e.order,
                PAGE,
                cursor.as_deref(),
            )
            .await?;
            let rows = contact_rows(&store, &pid, &e.columns, &page.data).await?;
            Ok((rows, page.next_cursor))
        }
    })
}

/// Each contact's cells, with its list memberships read where a column needs them.
async fn contact_rows(store: &Store, pid: &str, columns: &[Column], contacts: &[Contact]) -> Result<Vec<Vec<String>>> {
    let mut subs: Vec<Vec<Subscription>> = Vec::with_capacity(contacts.len());
    if export::needs_lists(columns) {
        for chunk in contacts.chunks(MEMBERSHIP_READS) {
            let reads = chunk.iter().map(|c| store.contact_subscriptions(pid, &c.id));
            subs.extend(futures::future::try_join_all(reads).await?);
        }
    }
    Ok(contacts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let subs = subs.get(i).map_or(&[][..], Vec::as_slice);
            columns
                .iter()
                .map(|col| export::cell(&export::value(c, col, subs)))
                .collect()
        })
        .collect())
}

/// The columns of a messages export.
pub const MESSAGE_COLUMNS: [&str; 17] = [
    "id",
    "created_at",
    "channel",
    "direction",
    "status",
    "contact_id",
    "from",
    "to",
    "subject",
    "body",
    "segments",
    "broadcast_id",
    "template_id",
    "list_id",
    "provider_id",
    "error",
    "revenue",
];

fn message_row(m: &Message) -> Vec<String> {
    let v = serde_json::to_value(m).unwrap_or_default();
    MESSAGE_COLUMNS.iter().map(|c| export::cell(&v[*c])).collect()
}

/// The project's messages (email and SMS, sent and received) the filter
/// keeps, newest first, as CSV, at most `cap` rows.
pub fn messages_csv(
    store: Store,
    pid: String,
    filter: MessageFilter,
    bom: bool,
    cap: usize,
) -> impl Stream<Item = Result<Bytes>> + Send {
    let header = MESSAGE_COLUMNS.iter().map(|c| c.to_string()).collect();
    let filter = Arc::new(filter);
    csv_stream(header, bom, cap, move |cursor| {
        let (store, pid, filter) = (store.clone(), pid.clone(), filter.clone());
        async move {
            let page: Page<Message> = messages::list(&store, &pid, &filter, PAGE, cursor.as_deref()).await?;
            Ok((page.data.iter().map(message_row).collect(), page.next_cursor))
        }
    })
}

/// The columns of a contact-form messages export.
pub const CONTACT_MESSAGE_COLUMNS: [&str; 8] = [
    "id",
    "created_at",
    "contact_id",
    "email",
    "name",
    "subject",
    "message",
    "status",
];

fn contact_message_row(r: &Record) -> Vec<String> {
    let field = |k: &str| r.fields.get(k).cloned().unwrap_or_default();
    let values = [
        serde_json::json!(r.id),
        serde_json::json!(r.created_at),
        serde_json::json!(r.contact_id),
        field("email"),
        field("name"),
        serde_json::json!(r.subject),
        serde_json::json!(r.message),
        serde_json::json!(r.status),
    ];
    values.iter().map(export::cell).collect()
}

/// The contact-form messages (content, status, subject, sender, created),
/// newest first, with the messages page's filters, as CSV.
pub fn contact_messages_csv(
    store: Store,
    pid: String,
    status: Option<MessageStatus>,
    q: Option<String>,
    bom: bool,
    cap: usize,
) -> impl Stream<Item = Result<Bytes>> + Send {
    let header = CONTACT_MESSAGE_COLUMNS.iter().map(|c| c.to_string()).collect();
    csv_stream(header, bom, cap, move |cursor| {
        let (store, pid, q) = (store.clone(), pid.clone(), q.clone());
        async move {
            let page = submissions::list_messages(&store, &pid, status, q.as_deref(), PAGE, cursor.as_deref()).await?;
            Ok((page.data.iter().map(contact_message_row).collect(), page.next_cursor))
        }
    })
}
