//! The end-to-end suite as one test binary: each module is one capability, every test spawns the real
//! app against the emulators with its own project, so they run in parallel in one process (one
//! compile and link instead of one per file).

mod bad_input;
mod broadcasts;
mod bulk;
mod bulk_jobs;
mod contacts;
mod email;
mod exports;
mod filters;
mod idempotency;
mod identities;
mod imports;
mod lists;
mod merge;
mod projects;
mod public;
mod referrals_events;
mod search;
mod sms;
mod sorting;
mod tags;
mod templates;
mod timeline;
