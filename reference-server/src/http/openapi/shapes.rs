//! Schemas of the bodies that handlers write with `json!` rather than a named type, and
//! of query strings read as raw pairs. Documentation only: each names the code that
//! writes or reads the shape it describes, and the OpenAPI tests check real answers
//! against several of them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use edge_core::Money;
use edge_tenancy::{PlanLimits, Role};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};

use crate::http::views::{OrganizationView, UserView};

/// `{"items": [...]}`: a whole list, not paged.
#[derive(ToSchema)]
pub struct Items<T> {
    /// Every item.
    pub items: Vec<T>,
}

/// What `http::health::healthz` answers.
#[derive(ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The server's version.
    pub version: String,
}

/// What `http::health::readyz` answers when ready.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ready`.
    pub status: String,
    /// The database.
    pub database: ReadinessDatabase,
    /// The migrations.
    pub migrations: ReadinessMigrations,
}

/// The database part of [`Readiness`].
#[derive(ToSchema)]
pub struct ReadinessDatabase {
    /// `ok`.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
}

/// The migrations part of [`Readiness`].
#[derive(ToSchema)]
pub struct ReadinessMigrations {
    /// How many are applied.
    pub applied: u64,
    /// How many are pending: 0 when ready.
    pub pending: u64,
}

/// What the M-Pesa callback routes answer Daraja (`http::callbacks`).
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub struct CallbackAck {
    /// `0` when accepted; a C2B validation that is refused carries Daraja's rejection
    /// code (a string such as `C2B00011`).
    #[schema(value_type = Object)]
    pub ResultCode: serde_json::Value,
    /// `Accepted`, or why not.
    pub ResultDesc: String,
}

/// The query of the WhatsApp verification handshake (`http::whatsapp::handshake`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Handshake {
    /// `subscribe`.
    #[param(rename = "hub.mode")]
    pub mode: String,
    /// Must equal `EDGE_WHATSAPP_VERIFY_TOKEN`.
    #[param(rename = "hub.verify_token")]
    pub verify_token: String,
    /// Echoed back.
    #[param(rename = "hub.challenge")]
    pub challenge: String,
}

/// What `POST /webhooks/whatsapp` answers once the body is stored.
#[derive(ToSchema)]
pub struct WebhookAck {
    /// `true`.
    pub received: bool,
}

/// `GET /me` (`http::auth::me`).
#[derive(ToSchema)]
pub struct Me {
    /// The caller, or `null` for an API key.
    pub user: Option<UserView>,
    /// For an API key: its id.
    #[schema(value_type = Option<uuid::Uuid>)]
    pub api_key_id: Option<uuid::Uuid>,
    /// The current organization.
    pub organization: OrganizationView,
    /// The caller's role in it.
    pub role: Role,
    /// Every organization the user belongs to (empty for an API key).
    pub memberships: Vec<Membership>,
}

/// One of [`Me::memberships`].
#[derive(ToSchema)]
pub struct Membership {
    /// The organization.
    pub organization: MembershipOrganization,
    /// The user's role there.
    pub role: String,
    /// `active` or `deactivated`.
    pub status: String,
}

/// The organization of a [`Membership`].
#[derive(ToSchema)]
pub struct MembershipOrganization {
    /// Id.
    pub id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Slug.
    pub slug: String,
    /// `active` or `suspended`.
    pub status: String,
}

/// `POST /api-keys` (`http::organization::create_api_key`): the key as listed, and the
/// key itself, shown this once.
#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    /// The key as listed.
    #[serde(flatten)]
    pub view: crate::identity::api_keys::ApiKeyView,
    /// The key (`edge_live_…`); store it now, it is never shown again.
    pub key: String,
}

/// `POST /users/invitations` (`http::organization::invite`).
#[derive(ToSchema)]
pub struct InvitationCreated {
    /// The invitation.
    pub invitation: crate::identity::members::InvitationView,
    /// The token to pass on to the invitee; shown this once.
    pub token: String,
}

/// `POST /admin/organizations` (`http::admin::create`).
#[derive(ToSchema)]
pub struct OrganizationCreated {
    /// The organization.
    pub organization: OrganizationView,
    /// The first admin's invitation, when `admin_email` was given.
    pub invitation: Option<AdminInvitation>,
}

/// The invitation of [`OrganizationCreated`].
#[derive(ToSchema)]
pub struct AdminInvitation {
    /// The token to pass on; shown this once.
    pub token: String,
    /// `org_admin`.
    pub role: String,
    /// Until when it can be accepted.
    pub expires_at: DateTime<Utc>,
}

/// `POST /admin/organizations/{id}/wallet/adjustments` (`http::wallet::adjust`).
#[derive(ToSchema)]
pub struct WalletAdjusted {
    /// The ledger transfer.
    #[schema(value_type = Object)]
    pub transfer: serde_json::Value,
    /// The wallet's balance after it.
    #[schema(value_type = Object)]
    pub balance: serde_json::Value,
    /// The ledger events it caused.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<serde_json::Value>,
    /// Whether this answers a repeated idempotency key.
    pub replayed: bool,
}

/// `GET /usage` (`http::usage::usage`).
#[derive(ToSchema)]
pub struct Usage {
    /// The organization.
    pub organization_id: uuid::Uuid,
    /// Per period (`YYYY-MM-DD` or `YYYY-MM`), the count of each metric.
    pub periods: BTreeMap<String, BTreeMap<String, i64>>,
    /// What the organization's plan allows.
    pub limits: PlanLimits,
}

/// One organization's usage report for a month (`crate::usage::report`).
#[derive(ToSchema)]
pub struct UsageReport {
    /// The organization.
    pub organization_id: uuid::Uuid,
    /// `YYYY-MM`.
    pub month: String,
    /// Each metric's count.
    pub counters: BTreeMap<String, i64>,
    /// WhatsApp messages by direction (`inbound`, `outbound`).
    pub messages: BTreeMap<String, i64>,
    /// Succeeded payments per currency.
    pub payments: BTreeMap<String, UsagePayments>,
    /// Rows and bytes stored.
    pub storage: UsageStorage,
}

/// A currency's payments in [`UsageReport`].
#[derive(ToSchema)]
pub struct UsagePayments {
    /// How many succeeded.
    pub succeeded: i64,
    /// Their total in minor units.
    pub amount_minor: i64,
}

/// Storage in [`UsageReport`].
#[derive(ToSchema)]
pub struct UsageStorage {
    /// Rows.
    pub rows: i64,
    /// Bytes.
    pub bytes: i64,
    /// Per table.
    pub tables: BTreeMap<String, UsageTable>,
}

/// A table's storage in [`UsageStorage`].
#[derive(ToSchema)]
pub struct UsageTable {
    /// Rows.
    pub rows: i64,
    /// Bytes.
    pub bytes: i64,
}

/// `GET /admin/usage` (`http::usage::admin_report`): a page of organizations.
#[derive(ToSchema)]
pub struct AdminUsage {
    /// Each organization's report.
    pub items: Vec<AdminUsageItem>,
    /// The next page's cursor; absent on the last page.
    pub next_cursor: Option<String>,
}

/// One organization in [`AdminUsage`].
#[derive(ToSchema)]
pub struct AdminUsageItem {
    /// The organization.
    pub organization_id: uuid::Uuid,
    /// `YYYY-MM`.
    pub month: String,
    /// Each metric's count.
    pub counters: BTreeMap<String, i64>,
    /// WhatsApp messages by direction (`inbound`, `outbound`).
    pub messages: BTreeMap<String, i64>,
    /// Succeeded payments per currency.
    pub payments: BTreeMap<String, UsagePayments>,
    /// Rows and bytes stored.
    pub storage: UsageStorage,
    /// The organization's slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
}

/// The period of an analytics report.
#[derive(ToSchema)]
pub struct ReportPeriod {
    /// The first local day.
    pub from: NaiveDate,
    /// The last local day.
    pub to: NaiveDate,
    /// The organization's offset from UTC.
    pub utc_offset_seconds: i32,
}

/// `GET /analytics/pipeline-conversion` (`crate::analytics::pipeline_conversion`).
#[derive(ToSchema)]
pub struct PipelineConversion {
    /// The period.
    pub period: ReportPeriod,
    /// Per pipeline.
    pub pipelines: Vec<PipelineConversionRow>,
}

/// A pipeline in [`PipelineConversion`].
#[derive(ToSchema)]
pub struct PipelineConversionRow {
    /// Id.
    pub pipeline_id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Per stage, in order.
    pub stages: Vec<StageConversion>,
}

/// A stage in [`PipelineConversionRow`].
#[derive(ToSchema)]
pub struct StageConversion {
    /// Id.
    pub stage_id: uuid::Uuid,
    /// Name.
    pub name: String,
    /// Position.
    pub position: i32,
    /// Whether it is archived.
    pub archived: bool,
    /// Deals that entered it.
    pub entered: i64,
    /// Deals that moved on from it.
    pub moved_on: i64,
    /// Deals won in it.
    pub won: i64,
    /// Deals lost in it.
    pub lost: i64,
    /// `moved_on * 100 / entered`.
    pub moved_on_percent: i64,
}

/// `GET /analytics/revenue-won` (`crate::analytics::revenue_won`).
#[derive(ToSchema)]
pub struct RevenueWon {
    /// The period.
    pub period: ReportPeriod,
    /// Per local month and currency.
    pub months: Vec<RevenueMonth>,
}

/// A month in [`RevenueWon`].
#[derive(ToSchema)]
pub struct RevenueMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// Deals won.
    pub deals: i64,
    /// Their value.
    pub revenue: Money,
}

/// `GET /analytics/payments` (`crate::analytics::payments_collected`).
#[derive(ToSchema)]
pub struct PaymentsCollected {
    /// The period.
    pub period: ReportPeriod,
    /// Per local month, currency and purpose.
    pub months: Vec<PaymentsMonth>,
}

/// A month in [`PaymentsCollected`].
#[derive(ToSchema)]
pub struct PaymentsMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// `wallet_top_up`, `subscription` or `collection`.
    pub purpose: String,
    /// Succeeded payments.
    pub payments: i64,
    /// Their total.
    pub collected: Money,
}

/// `GET /analytics/activities` (`crate::analytics::activities`).
#[derive(ToSchema)]
pub struct ActivitiesReport {
    /// The period.
    pub period: ReportPeriod,
    /// Per member (`user_id` null: unassigned).
    pub users: Vec<ActivitiesByUser>,
}

/// A member in [`ActivitiesReport`].
#[derive(ToSchema)]
pub struct ActivitiesByUser {
    /// The member, or `null` for unassigned activities.
    pub user_id: Option<uuid::Uuid>,
    /// Activities created.
    pub created: i64,
    /// Activities completed.
    pub completed: i64,
    /// Per kind.
    pub by_kind: BTreeMap<String, ActivityCounts>,
}

/// A kind in [`ActivitiesByUser`].
#[derive(ToSchema)]
pub struct ActivityCounts {
    /// Created.
    pub created: i64,
    /// Completed.
    pub completed: i64,
}

/// `GET /analytics/targets` (`crate::analytics::targets`).
#[derive(ToSchema)]
pub struct TargetsReport {
    /// The period.
    pub period: ReportPeriod,
    /// The targets overlapping it, with progress.
    pub targets: Vec<crate::crm::targets::TargetView>,
}

/// `GET /analytics/messages` (`crate::analytics::messages`).
#[derive(ToSchema)]
pub struct MessagesReport {
    /// The period.
    pub period: ReportPeriod,
    /// Messages by direction and status.
    pub volume: Vec<MessageVolume>,
    /// The same per local month.
    pub by_month: Vec<MessageVolumeMonth>,
    /// Fees per currency.
    pub spend: BTreeMap<String, MessageSpend>,
}

/// A row of [`MessagesReport::volume`].
#[derive(ToSchema)]
pub struct MessageVolume {
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The message status.
    pub status: String,
    /// How many.
    pub messages: i64,
}

/// A row of [`MessagesReport::by_month`].
#[derive(ToSchema)]
pub struct MessageVolumeMonth {
    /// `YYYY-MM`.
    pub month: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// The message status.
    pub status: String,
    /// How many.
    pub messages: i64,
}

/// A currency in [`MessagesReport::spend`].
#[derive(ToSchema)]
pub struct MessageSpend {
    /// Fees captured.
    pub captured: Money,
    /// Fees refunded.
    pub refunded: Money,
    /// Captured less refunded.
    pub net: Money,
}
