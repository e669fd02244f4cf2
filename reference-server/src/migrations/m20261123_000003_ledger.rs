//! The wallet ledger: wallets, transfers, their entries, holds and idempotency records.
//!
//! - `ledger_wallets`: one row per organization (primary key `organization_id`), with the
//!   cached `posted_minor` (the sum of the wallet's entries) and `held_minor` (the sum of
//!   the holds still recorded as active), the credit limit, the low-balance threshold and
//!   `next_seq`, the next entry sequence number of the organization. Every money-moving
//!   operation locks this row first, so the row is also the organization's ledger lock.
//! - `ledger_transfers` and `ledger_entries`: append-only. Each transfer has two entries
//!   (`-amount` on the debited account, `+amount` on the credited one). Entries of platform
//!   accounts carry the `organization_id` of the transfer they belong to, so every row is
//!   tenant-scoped. Entry `seq` is gapless per organization.
//! - `ledger_holds`: two-phase spending; status moves once from `active` to `captured`,
//!   `released` or `expired`. At most one transfer captures a hold (unique index).
//! - `ledger_idempotency`: the first successful outcome per `(organization_id, key)`, with
//!   the operation's fingerprint.
//!
//! Triggers refuse `UPDATE` and `DELETE` on transfers, entries and idempotency records.
//! Money is `BIGINT` minor units with a currency code. Primary keys and foreign keys all
//! start with `organization_id`. Ledger rows are not deleted with their organization: the
//! foreign key to `organizations` restricts deletion.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer as minor, big_integer_null as minor_null, json, string_len as text,
    timestamp_with_time_zone as time, timestamp_with_time_zone_null as time_null, uuid, uuid_null,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum LedgerWallets {
    Table,
    OrganizationId,
    Currency,
    PostedMinor,
    HeldMinor,
    CreditLimitMinor,
    LowBalanceThresholdMinor,
    NextSeq,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LedgerHolds {
    Table,
    OrganizationId,
    Id,
    AmountMinor,
    Currency,
    Status,
    CapturedMinor,
    CaptureTransferId,
    IdempotencyKey,
    Metadata,
    CreatedAt,
    ExpiresAt,
    EndedAt,
}

#[derive(DeriveIden)]
enum LedgerTransfers {
    Table,
    OrganizationId,
    Id,
    FromAccount,
    ToAccount,
    AmountMinor,
    Currency,
    IdempotencyKey,
    Metadata,
    HoldId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerEntries {
    Table,
    OrganizationId,
    Id,
    Seq,
    TransferId,
    HoldId,
    Account,
    AmountMinor,
    Currency,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerIdempotency {
    Table,
    OrganizationId,
    Key,
    Fingerprint,
    Outcome,
    CreatedAt,
}

fn currency(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(3).not_null().to_owned()
}

/// `(organization_id)` referencing the organization's wallet.
fn wallet_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(LedgerWallets::Table, LedgerWallets::OrganizationId)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn index(
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
    unique: bool,
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    if unique {
        index.unique();
    }
    for col in cols {
        index.col(col);
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LedgerWallets::Table)
                .col(uuid(LedgerWallets::OrganizationId).primary_key())
                .col(currency(LedgerWallets::Currency))
                .col(minor(LedgerWallets::PostedMinor))
                .col(minor(LedgerWallets::HeldMinor))
                .col(minor(LedgerWallets::CreditLimitMinor))
                .col(minor_null(LedgerWallets::LowBalanceThresholdMinor))
                .col(minor(LedgerWallets::NextSeq))
                .col(time(LedgerWallets::CreatedAt))
                .col(time(LedgerWallets::UpdatedAt))
                .check(Expr::col(LedgerWallets::HeldMinor).gte(0))
                .check(Expr::col(LedgerWallets::CreditLimitMinor).gte(0))
                .check(Expr::col(LedgerWallets::NextSeq).gte(1))
                .foreign_key(
                    &mut ForeignKey::create()
                        .from(LedgerWallets::Table, LedgerWallets::OrganizationId)
                        .to(Organizations::Table, Organizations::Id)
                        .on_delete(ForeignKeyAction::Restrict)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(LedgerHolds::Table)
                .col(uuid(LedgerHolds::OrganizationId))
                .col(uuid(LedgerHolds::Id))
                .col(minor(LedgerHolds::AmountMinor))
                .col(currency(LedgerHolds::Currency))
                .col(text(LedgerHolds::Status, 16))
                .col(minor_null(LedgerHolds::CapturedMinor))
                .col(uuid_null(LedgerHolds::CaptureTransferId))
                .col(text(LedgerHolds::IdempotencyKey, 255))
                .col(json(LedgerHolds::Metadata))
                .col(time(LedgerHolds::CreatedAt))
                .col(time(LedgerHolds::ExpiresAt))
                .col(time_null(LedgerHolds::EndedAt))
                .check(Expr::col(LedgerHolds::AmountMinor).gt(0))
                .primary_key(
                    Index::create()
                        .col(LedgerHolds::OrganizationId)
                        .col(LedgerHolds::Id),
                )
                .foreign_key(&mut wallet_fk(
                    LedgerHolds::Table,
                    LedgerHolds::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;
        // The sweep (oldest expiry first) and the per-wallet sum of active holds past expiry.
        m.create_index(index(
            "ledger_holds_status_expires_idx",
            LedgerHolds::Table,
            vec![
                LedgerHolds::Status.into_iden(),
                LedgerHolds::ExpiresAt.into_iden(),
            ],
            false,
        ))
        .await?;
        m.create_index(index(
            "ledger_holds_org_status_expires_idx",
            LedgerHolds::Table,
            vec![
                LedgerHolds::OrganizationId.into_iden(),
                LedgerHolds::Status.into_iden(),
                LedgerHolds::ExpiresAt.into_iden(),
            ],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(LedgerTransfers::Table)
                .col(uuid(LedgerTransfers::OrganizationId))
                .col(uuid(LedgerTransfers::Id))
                .col(text(LedgerTransfers::FromAccount, 64))
                .col(text(LedgerTransfers::ToAccount, 64))
                .col(minor(LedgerTransfers::AmountMinor))
                .col(currency(LedgerTransfers::Currency))
                .col(text(LedgerTransfers::IdempotencyKey, 255))
                .col(json(LedgerTransfers::Metadata))
                .col(uuid_null(LedgerTransfers::HoldId))
                .col(time(LedgerTransfers::CreatedAt))
                .check(Expr::col(LedgerTransfers::AmountMinor).gt(0))
                .primary_key(
                    Index::create()
                        .col(LedgerTransfers::OrganizationId)
                        .col(LedgerTransfers::Id),
                )
                .foreign_key(&mut wallet_fk(
                    LedgerTransfers::Table,
                    LedgerTransfers::OrganizationId,
                ))
                .foreign_key(
                    &mut ForeignKey::create()
                        .from_tbl(LedgerTransfers::Table)
                        .from_col(LedgerTransfers::OrganizationId)
                        .from_col(LedgerTransfers::HoldId)
                        .to_tbl(LedgerHolds::Table)
                        .to_col(LedgerHolds::OrganizationId)
                        .to_col(LedgerHolds::Id)
                        .on_delete(ForeignKeyAction::Restrict)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        // A hold is captured by at most one transfer (NULLs do not collide).
        m.create_index(index(
            "ledger_transfers_hold_key",
            LedgerTransfers::Table,
            vec![
                LedgerTransfers::OrganizationId.into_iden(),
                LedgerTransfers::HoldId.into_iden(),
            ],
            true,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(LedgerEntries::Table)
                .col(uuid(LedgerEntries::OrganizationId))
                .col(uuid(LedgerEntries::Id))
                .col(minor(LedgerEntries::Seq))
                .col(uuid(LedgerEntries::TransferId))
                .col(uuid_null(LedgerEntries::HoldId))
                .col(text(LedgerEntries::Account, 64))
                .col(minor(LedgerEntries::AmountMinor))
                .col(currency(LedgerEntries::Currency))
                .col(time(LedgerEntries::CreatedAt))
                .check(Expr::col(LedgerEntries::AmountMinor).ne(0))
                .check(Expr::col(LedgerEntries::Seq).gte(1))
                .primary_key(
                    Index::create()
                        .col(LedgerEntries::OrganizationId)
                        .col(LedgerEntries::Id),
                )
                .foreign_key(&mut wallet_fk(
                    LedgerEntries::Table,
                    LedgerEntries::OrganizationId,
                ))
                .foreign_key(
                    &mut ForeignKey::create()
                        .from_tbl(LedgerEntries::Table)
                        .from_col(LedgerEntries::OrganizationId)
                        .from_col(LedgerEntries::TransferId)
                        .to_tbl(LedgerTransfers::Table)
                        .to_col(LedgerTransfers::OrganizationId)
                        .to_col(LedgerTransfers::Id)
                        .on_delete(ForeignKeyAction::Restrict)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "ledger_entries_org_seq_key",
            LedgerEntries::Table,
            vec![
                LedgerEntries::OrganizationId.into_iden(),
                LedgerEntries::Seq.into_iden(),
            ],
            true,
        ))
        .await?;
        // Balances of any account (platform accounts sum across organizations).
        m.create_index(index(
            "ledger_entries_account_idx",
            LedgerEntries::Table,
            vec![
                LedgerEntries::Account.into_iden(),
                LedgerEntries::Currency.into_iden(),
            ],
            false,
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(LedgerIdempotency::Table)
                .col(uuid(LedgerIdempotency::OrganizationId))
                .col(text(LedgerIdempotency::Key, 255))
                .col(
                    ColumnDef::new(LedgerIdempotency::Fingerprint)
                        .text()
                        .not_null(),
                )
                .col(json(LedgerIdempotency::Outcome))
                .col(time(LedgerIdempotency::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(LedgerIdempotency::OrganizationId)
                        .col(LedgerIdempotency::Key),
                )
                .foreign_key(&mut wallet_fk(
                    LedgerIdempotency::Table,
                    LedgerIdempotency::OrganizationId,
                ))
                .to_owned(),
        )
        .await?;

        // Transfers, entries and idempotency records are append-only, in the database too.
        let db = m.get_connection();
        let append_only = ["ledger_transfers", "ledger_entries", "ledger_idempotency"];
        match m.get_database_backend() {
            sea_orm::DatabaseBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ \
                     BEGIN RAISE EXCEPTION 'ledger rows are append-only: % on %', TG_OP, \
                     TG_TABLE_NAME USING ERRCODE = 'restrict_violation'; END $$",
                )
                .await?;
                for table in append_only {
                    db.execute_unprepared(&format!(
                        "CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} \
                         FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
                    ))
                    .await?;
                }
            }
            _ => {
                for table in append_only {
                    for op in ["UPDATE", "DELETE"] {
                        db.execute_unprepared(&format!(
                            "CREATE TRIGGER {table}_no_{} BEFORE {op} ON {table} \
                             BEGIN SELECT RAISE(ABORT, 'ledger rows are append-only'); END",
                            op.to_lowercase()
                        ))
                        .await?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LedgerIdempotency::Table.into_iden(),
            LedgerEntries::Table.into_iden(),
            LedgerTransfers::Table.into_iden(),
            LedgerHolds::Table.into_iden(),
            LedgerWallets::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        if m.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            m.get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS ledger_append_only()")
                .await?;
        }
        Ok(())
    }
}
