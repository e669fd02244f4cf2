//! Plans (managed by the platform operator), each organization's subscription to one,
//! and the periods it has paid for.
//!
//! - `plans`: platform-owned, not a tenant table (no `organization_id`). `code` is the
//!   primary key (a slug). The price is `price_minor` in `currency`; a plan whose price
//!   is zero is free and never lapses. `period_days` is what one payment buys,
//!   `grace_days` how long a lapsed subscription keeps working before it is suspended.
//!   The limits the tenant resolver enforces are columns too: `requests_per_minute`,
//!   `request_burst`, `seats` (active members), `max_api_keys` and `included_messages`
//!   (WhatsApp messages a month; `NULL` is unmetered). An archived plan (`active` false)
//!   cannot be chosen any more, but organizations already on it keep working.
//! - `subscriptions`: one row per organization (primary key `organization_id`): the plan
//!   (`plan_code`, the source of truth; `organizations.plan` is a copy kept in the same
//!   transaction for the readers that show it), `status` (`active` → `grace` →
//!   `suspended`, back to `active` on payment), `current_period_end` (`NULL` on a free
//!   plan) and `grace_ends_at` (set when the subscription enters grace).
//! - `subscription_periods`: one row per paid period, inserted only. `payment_id` is
//!   unique per organization: a payment extends the subscription at most once, however
//!   many times its confirmation arrives.
//!
//! Every organization that exists when this migration runs is subscribed to the plan in
//! its `organizations.plan` (`standard` if that names no plan): active, with a first
//! period of the plan's length from now (no end on a free plan). The four plans the
//! server had hard-coded are seeded with the same limits.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer as minor, big_integer_null as minor_null, boolean, integer, string_len as text,
    timestamp_with_time_zone as time, timestamp_with_time_zone_null as time_null, uuid,
};
use sea_orm_migration::sea_orm::ConnectionTrait;
use sea_orm_migration::sea_orm::prelude::Uuid;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Plan,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Plans {
    Table,
    Code,
    Name,
    PriceMinor,
    Currency,
    PeriodDays,
    GraceDays,
    IncludedMessages,
    RequestsPerMinute,
    RequestBurst,
    Seats,
    MaxApiKeys,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Subscriptions {
    Table,
    OrganizationId,
    PlanCode,
    Status,
    CurrentPeriodEnd,
    GraceEndsAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SubscriptionPeriods {
    Table,
    OrganizationId,
    Id,
    PaymentId,
    PlanCode,
    StartsAt,
    EndsAt,
    AmountMinor,
    Currency,
    CreatedAt,
}

/// A seeded plan: the limits `identity::plan_limits` had hard-coded until this migration.
struct Seed {
    code: &'static str,
    name: &'static str,
    price_minor: i64,
    included_messages: Option<i64>,
    requests_per_minute: i32,
    request_burst: i32,
    seats: i32,
    max_api_keys: i32,
}

const SEEDS: [Seed; 4] = [
    Seed {
        code: "free",
        name: "Free",
        price_minor: 0,
        included_messages: Some(200),
        requests_per_minute: 60,
        request_burst: 20,
        seats: 3,
        max_api_keys: 1,
    },
    Seed {
        code: "standard",
        name: "Standard",
        // KES 2,500.00 a month.
        price_minor: 250_000,
        included_messages: Some(10_000),
        requests_per_minute: 600,
        request_burst: 100,
        seats: 25,
        max_api_keys: 10,
    },
    Seed {
        code: "enterprise",
        name: "Enterprise",
        // KES 15,000.00 a month.
        price_minor: 1_500_000,
        included_messages: None,
        requests_per_minute: 3000,
        request_burst: 500,
        seats: 1000,
        max_api_keys: 50,
    },
    Seed {
        code: "platform",
        name: "Platform operators",
        price_minor: 0,
        included_messages: None,
        requests_per_minute: 6000,
        request_burst: 1000,
        seats: 100,
        max_api_keys: 10,
    },
];

/// Every seeded plan is paid for 30 days at a time, with 7 days of grace.
const PERIOD_DAYS: i32 = 30;
const GRACE_DAYS: i32 = 7;
/// Where an organization whose `plan` names no plan goes.
const FALLBACK_PLAN: &str = "standard";

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(col);
    }
    index.to_owned()
}

fn custom(err: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(err.to_string())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Plans::Table)
                .col(text(Plans::Code, 32).primary_key())
                .col(text(Plans::Name, 100))
                .col(minor(Plans::PriceMinor))
                .col(text(Plans::Currency, 3))
                .col(integer(Plans::PeriodDays))
                .col(integer(Plans::GraceDays))
                .col(minor_null(Plans::IncludedMessages))
                .col(integer(Plans::RequestsPerMinute))
                .col(integer(Plans::RequestBurst))
                .col(integer(Plans::Seats))
                .col(integer(Plans::MaxApiKeys))
                .col(boolean(Plans::Active).default(true))
                .col(time(Plans::CreatedAt))
                .col(time(Plans::UpdatedAt))
                .check(Expr::col(Plans::PriceMinor).gte(0))
                .check(Expr::col(Plans::PeriodDays).gt(0))
                .check(Expr::col(Plans::GraceDays).gte(0))
                .check(Expr::cust(
                    "included_messages IS NULL OR included_messages >= 0",
                ))
                .check(Expr::col(Plans::RequestsPerMinute).gt(0))
                .check(Expr::col(Plans::RequestBurst).gt(0))
                .check(Expr::col(Plans::Seats).gt(0))
                .check(Expr::col(Plans::MaxApiKeys).gte(0))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Subscriptions::Table)
                .col(uuid(Subscriptions::OrganizationId).primary_key())
                .col(text(Subscriptions::PlanCode, 32))
                .col(text(Subscriptions::Status, 16).default("active"))
                .col(time_null(Subscriptions::CurrentPeriodEnd))
                .col(time_null(Subscriptions::GraceEndsAt))
                .col(time(Subscriptions::UpdatedAt))
                .check(Expr::col(Subscriptions::Status).is_in(["active", "grace", "suspended"]))
                .check(Expr::cust("status <> 'grace' OR grace_ends_at IS NOT NULL"))
                .foreign_key(
                    ForeignKey::create()
                        .from(Subscriptions::Table, Subscriptions::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Subscriptions::Table, Subscriptions::PlanCode)
                        .to(Plans::Table, Plans::Code)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        // What `advance` looks for: active subscriptions whose period has ended, and
        // subscriptions in grace whose grace has run out.
        m.create_index(index(
            "subscriptions_period_end_idx",
            Subscriptions::Table,
            vec![
                Subscriptions::Status.into_iden(),
                Subscriptions::CurrentPeriodEnd.into_iden(),
            ],
        ))
        .await?;
        m.create_index(index(
            "subscriptions_grace_end_idx",
            Subscriptions::Table,
            vec![
                Subscriptions::Status.into_iden(),
                Subscriptions::GraceEndsAt.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(SubscriptionPeriods::Table)
                .col(uuid(SubscriptionPeriods::OrganizationId))
                .col(uuid(SubscriptionPeriods::Id))
                .col(uuid(SubscriptionPeriods::PaymentId))
                .col(text(SubscriptionPeriods::PlanCode, 32))
                .col(time(SubscriptionPeriods::StartsAt))
                .col(time(SubscriptionPeriods::EndsAt))
                .col(minor(SubscriptionPeriods::AmountMinor))
                .col(text(SubscriptionPeriods::Currency, 3))
                .col(time(SubscriptionPeriods::CreatedAt))
                .check(Expr::col(SubscriptionPeriods::AmountMinor).gte(0))
                .check(
                    Expr::col(SubscriptionPeriods::EndsAt)
                        .gt(Expr::col(SubscriptionPeriods::StartsAt)),
                )
                .primary_key(
                    Index::create()
                        .col(SubscriptionPeriods::OrganizationId)
                        .col(SubscriptionPeriods::Id),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(
                            SubscriptionPeriods::Table,
                            SubscriptionPeriods::OrganizationId,
                        )
                        .to(Subscriptions::Table, Subscriptions::OrganizationId)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(SubscriptionPeriods::Table, SubscriptionPeriods::PlanCode)
                        .to(Plans::Table, Plans::Code)
                        .on_delete(ForeignKeyAction::Restrict),
                )
                .to_owned(),
        )
        .await?;
        // A payment extends a subscription once: the constraint that makes a duplicate
        // confirmation (even a concurrent one) harmless.
        m.create_index(
            index(
                "subscription_periods_payment_key",
                SubscriptionPeriods::Table,
                vec![
                    SubscriptionPeriods::OrganizationId.into_iden(),
                    SubscriptionPeriods::PaymentId.into_iden(),
                ],
            )
            .unique()
            .to_owned(),
        )
        .await?;
        // An organization's periods, latest first.
        m.create_index(index(
            "subscription_periods_starts_idx",
            SubscriptionPeriods::Table,
            vec![
                SubscriptionPeriods::OrganizationId.into_iden(),
                SubscriptionPeriods::StartsAt.into_iden(),
            ],
        ))
        .await?;

        seed_plans(m).await?;
        subscribe_existing_organizations(m).await?;

        super::m20261123_000004_row_level_security::protect(
            m,
            &["subscriptions", "subscription_periods"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SubscriptionPeriods::Table.into_iden(),
            Subscriptions::Table.into_iden(),
            Plans::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

async fn seed_plans(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let now = edge_core::Clock::now(&edge_core::SystemClock);
    let mut insert = Query::insert();
    insert.into_table(Plans::Table).columns([
        Plans::Code,
        Plans::Name,
        Plans::PriceMinor,
        Plans::Currency,
        Plans::PeriodDays,
        Plans::GraceDays,
        Plans::IncludedMessages,
        Plans::RequestsPerMinute,
        Plans::RequestBurst,
        Plans::Seats,
        Plans::MaxApiKeys,
        Plans::Active,
        Plans::CreatedAt,
        Plans::UpdatedAt,
    ]);
    for seed in SEEDS {
        insert
            .values([
                seed.code.into(),
                seed.name.into(),
                seed.price_minor.into(),
                "KES".into(),
                PERIOD_DAYS.into(),
                GRACE_DAYS.into(),
                seed.included_messages.into(),
                seed.requests_per_minute.into(),
                seed.request_burst.into(),
                seed.seats.into(),
                seed.max_api_keys.into(),
                true.into(),
                now.into(),
                now.into(),
            ])
            .map_err(custom)?;
    }
    m.get_connection().execute(&insert).await.map(|_| ())
}

/// Subscribes every existing organization to its plan, active, with a first period from
/// now; an organization whose plan is unknown moves to the fallback plan (the limits it
/// had until now were the fallback plan's too).
async fn subscribe_existing_organizations(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = m.get_connection();
    let now = edge_core::Clock::now(&edge_core::SystemClock);
    let select = Query::select()
        .columns([Organizations::Id, Organizations::Plan])
        .from(Organizations::Table)
        .to_owned();
    for row in db.query_all(&select).await? {
        let org: Uuid = row.try_get("", "id")?;
        let plan: String = row.try_get("", "plan")?;
        let seed = SEEDS
            .iter()
            .find(|s| s.code == plan)
            .or_else(|| SEEDS.iter().find(|s| s.code == FALLBACK_PLAN))
            .ok_or_else(|| custom("the fallback plan is not seeded"))?;
        if seed.code != plan {
            let update = Query::update()
                .table(Organizations::Table)
                .value(Organizations::Plan, seed.code)
                .value(Organizations::UpdatedAt, now)
                .and_where(Expr::col(Organizations::Id).eq(org))
                .to_owned();
            db.execute(&update).await?;
        }
        let period_end =
            (seed.price_minor > 0).then(|| now + chrono::Duration::days(i64::from(PERIOD_DAYS)));
        let insert = Query::insert()
            .into_table(Subscriptions::Table)
            .columns([
                Subscriptions::OrganizationId,
                Subscriptions::PlanCode,
                Subscriptions::Status,
                Subscriptions::CurrentPeriodEnd,
                Subscriptions::UpdatedAt,
            ])
            .values([
                org.into(),
                seed.code.into(),
                "active".into(),
                period_end.into(),
                now.into(),
            ])
            .map_err(custom)?
            .to_owned();
        db.execute(&insert).await?;
    }
    Ok(())
}
