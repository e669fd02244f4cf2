//! The CRM: prospects (leads), relationships (customers), pipelines and deals, tickets,
//! targets and activities, each organization in its own vocabulary.
//!
//! Every record is tenant-owned (`organization_id` first in its primary key and foreign
//! keys) and every create, change and delete writes an audit entry in the same
//! transaction. Lists share one query language ([`list`]): filters, search, sort and
//! keyset pagination. Who sees which records follows the organization's
//! [`visibility`] setting.

pub mod activities;
pub mod custom_fields;
pub mod list;
pub mod records;
pub mod tags;
pub mod targets;
pub mod tickets;
pub mod visibility;
