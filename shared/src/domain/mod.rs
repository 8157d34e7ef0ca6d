//! Pure rules: no I/O, no clock reads except where a timestamp is an input.

pub mod activity;
pub mod broadcast;
pub mod bulk;
pub mod contact;
pub mod email;
pub mod export;
pub mod ids;
pub mod import;
pub mod keys;
pub mod links;
pub mod list;
pub mod merge;
pub mod message;
pub mod normalize;
pub mod project;
pub mod schedule;
pub mod search;
pub mod ses_event;
pub mod sms;
pub mod submission;
pub mod tag;
pub mod template;
pub mod unsubscribe;
pub mod zone;
