//! Identity: users, their memberships of organizations, login sessions with rotating
//! refresh tokens, API keys, invitations, organization branding and vocabulary, the
//! audit log and usage counters.
//!
//! Users are global (one person may belong to several organizations). Every
//! tenant-owned table has `organization_id` as the first column of its primary key and
//! of every foreign key to another tenant-owned table.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    string_len as text, string_len_null as text_null, timestamp_with_time_zone as time,
    timestamp_with_time_zone_null as time_null, uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    DisplayName,
    LogoUrl,
    PrimaryColor,
    AccentColor,
    CustomDomain,
    Plan,
    SingleActiveSession,
    Settings,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    PasswordHash,
    IsOperator,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Memberships {
    Table,
    OrganizationId,
    Id,
    UserId,
    Role,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    OrganizationId,
    Id,
    UserId,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    RevokedReason,
    UserAgent,
    IpAddress,
}

#[derive(DeriveIden)]
enum RefreshTokens {
    Table,
    OrganizationId,
    Id,
    SessionId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    OrganizationId,
    Id,
    Name,
    Prefix,
    KeyHash,
    Environment,
    Role,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Invitations {
    Table,
    OrganizationId,
    Id,
    Email,
    Role,
    TokenHash,
    InvitedBy,
    CreatedAt,
    ExpiresAt,
    AcceptedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    OrganizationId,
    Id,
    ActorType,
    ActorId,
    Action,
    TargetType,
    TargetId,
    IpAddress,
    UserAgent,
    RequestId,
    Details,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UsageCounters {
    Table,
    OrganizationId,
    Metric,
    Period,
    Count,
    UpdatedAt,
}

/// `organization_id` referencing organizations, deleted with it.
fn org_fk(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Alias::new("organizations"), Organizations::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn unique_index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table).unique();
    for col in cols {
        index.col(col);
    }
    index.to_owned()
}

fn index(name: &str, table: impl IntoIden, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(col);
    }
    index.to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // Organizations gain branding, a plan, the single-session switch and their vocabulary.
        for column in [
            text_null(Organizations::DisplayName, 200),
            text_null(Organizations::LogoUrl, 2048),
            text_null(Organizations::PrimaryColor, 7),
            text_null(Organizations::AccentColor, 7),
            text_null(Organizations::CustomDomain, 253),
            ColumnDef::new(Organizations::Plan)
                .string_len(32)
                .not_null()
                .default("standard")
                .to_owned(),
            ColumnDef::new(Organizations::SingleActiveSession)
                .boolean()
                .not_null()
                .default(false)
                .to_owned(),
            ColumnDef::new(Organizations::Settings)
                .json()
                .not_null()
                .default("{}")
                .to_owned(),
        ] {
            m.alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(column)
                    .to_owned(),
            )
            .await?;
        }
        m.create_index(unique_index(
            "organizations_custom_domain_key",
            Organizations::Table,
            vec![Organizations::CustomDomain.into_iden()],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Users::Table)
                .col(uuid(Users::Id).primary_key())
                .col(text(Users::Email, 320))
                .col(text(Users::Name, 200))
                .col(text(Users::PasswordHash, 200))
                .col(
                    ColumnDef::new(Users::IsOperator)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(
                    ColumnDef::new(Users::Status)
                        .string_len(16)
                        .not_null()
                        .default("active"),
                )
                .col(time(Users::CreatedAt))
                .col(time(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "users_email_key",
            Users::Table,
            vec![Users::Email.into_iden()],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Memberships::Table)
                .col(uuid(Memberships::OrganizationId))
                .col(uuid(Memberships::Id))
                .col(uuid(Memberships::UserId))
                .col(text(Memberships::Role, 16))
                .col(
                    ColumnDef::new(Memberships::Status)
                        .string_len(16)
                        .not_null()
                        .default("active"),
                )
                .col(time(Memberships::CreatedAt))
                .col(time(Memberships::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(Memberships::OrganizationId)
                        .col(Memberships::Id),
                )
                .foreign_key(&mut org_fk(Memberships::Table, Memberships::OrganizationId))
                .foreign_key(
                    &mut ForeignKey::create()
                        .from(Memberships::Table, Memberships::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "memberships_org_user_key",
            Memberships::Table,
            vec![
                Memberships::OrganizationId.into_iden(),
                Memberships::UserId.into_iden(),
            ],
        ))
        .await?;
        m.create_index(index(
            "memberships_user_idx",
            Memberships::Table,
            vec![Memberships::UserId.into_iden()],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .col(uuid(Sessions::OrganizationId))
                .col(uuid(Sessions::Id))
                .col(uuid(Sessions::UserId))
                .col(time(Sessions::CreatedAt))
                .col(time(Sessions::ExpiresAt))
                .col(time_null(Sessions::RevokedAt))
                .col(text_null(Sessions::RevokedReason, 32))
                .col(text_null(Sessions::UserAgent, 512))
                .col(text_null(Sessions::IpAddress, 64))
                .primary_key(
                    Index::create()
                        .col(Sessions::OrganizationId)
                        .col(Sessions::Id),
                )
                .foreign_key(&mut org_fk(Sessions::Table, Sessions::OrganizationId))
                .foreign_key(
                    &mut ForeignKey::create()
                        .from(Sessions::Table, Sessions::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "sessions_org_user_idx",
            Sessions::Table,
            vec![
                Sessions::OrganizationId.into_iden(),
                Sessions::UserId.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(RefreshTokens::Table)
                .col(uuid(RefreshTokens::OrganizationId))
                .col(uuid(RefreshTokens::Id))
                .col(uuid(RefreshTokens::SessionId))
                .col(text(RefreshTokens::TokenHash, 64))
                .col(time(RefreshTokens::CreatedAt))
                .col(time(RefreshTokens::ExpiresAt))
                .col(time_null(RefreshTokens::UsedAt))
                .primary_key(
                    Index::create()
                        .col(RefreshTokens::OrganizationId)
                        .col(RefreshTokens::Id),
                )
                .foreign_key(
                    &mut ForeignKey::create()
                        .from_tbl(RefreshTokens::Table)
                        .from_col(RefreshTokens::OrganizationId)
                        .from_col(RefreshTokens::SessionId)
                        .to_tbl(Sessions::Table)
                        .to_col(Sessions::OrganizationId)
                        .to_col(Sessions::Id)
                        .on_delete(ForeignKeyAction::Cascade)
                        .to_owned(),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "refresh_tokens_hash_key",
            RefreshTokens::Table,
            vec![RefreshTokens::TokenHash.into_iden()],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(ApiKeys::Table)
                .col(uuid(ApiKeys::OrganizationId))
                .col(uuid(ApiKeys::Id))
                .col(text(ApiKeys::Name, 100))
                .col(text(ApiKeys::Prefix, 32))
                .col(text(ApiKeys::KeyHash, 64))
                .col(text(ApiKeys::Environment, 8))
                .col(text(ApiKeys::Role, 16))
                .col(ColumnDef::new(ApiKeys::CreatedBy).uuid().null())
                .col(time(ApiKeys::CreatedAt))
                .col(time_null(ApiKeys::ExpiresAt))
                .col(time_null(ApiKeys::LastUsedAt))
                .col(time_null(ApiKeys::RevokedAt))
                .primary_key(
                    Index::create()
                        .col(ApiKeys::OrganizationId)
                        .col(ApiKeys::Id),
                )
                .foreign_key(&mut org_fk(ApiKeys::Table, ApiKeys::OrganizationId))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "api_keys_prefix_key",
            ApiKeys::Table,
            vec![ApiKeys::Prefix.into_iden()],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(Invitations::Table)
                .col(uuid(Invitations::OrganizationId))
                .col(uuid(Invitations::Id))
                .col(text(Invitations::Email, 320))
                .col(text(Invitations::Role, 16))
                .col(text(Invitations::TokenHash, 64))
                .col(ColumnDef::new(Invitations::InvitedBy).uuid().null())
                .col(time(Invitations::CreatedAt))
                .col(time(Invitations::ExpiresAt))
                .col(time_null(Invitations::AcceptedAt))
                .col(time_null(Invitations::RevokedAt))
                .primary_key(
                    Index::create()
                        .col(Invitations::OrganizationId)
                        .col(Invitations::Id),
                )
                .foreign_key(&mut org_fk(Invitations::Table, Invitations::OrganizationId))
                .to_owned(),
        )
        .await?;
        m.create_index(unique_index(
            "invitations_token_hash_key",
            Invitations::Table,
            vec![Invitations::TokenHash.into_iden()],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(uuid(AuditLog::OrganizationId))
                .col(uuid(AuditLog::Id))
                .col(text(AuditLog::ActorType, 16))
                .col(ColumnDef::new(AuditLog::ActorId).uuid().null())
                .col(text(AuditLog::Action, 64))
                .col(text_null(AuditLog::TargetType, 64))
                .col(text_null(AuditLog::TargetId, 64))
                .col(text_null(AuditLog::IpAddress, 64))
                .col(text_null(AuditLog::UserAgent, 512))
                .col(text_null(AuditLog::RequestId, 128))
                .col(
                    ColumnDef::new(AuditLog::Details)
                        .json()
                        .not_null()
                        .default("{}"),
                )
                .col(time(AuditLog::CreatedAt))
                .primary_key(
                    Index::create()
                        .col(AuditLog::OrganizationId)
                        .col(AuditLog::Id),
                )
                .foreign_key(&mut org_fk(AuditLog::Table, AuditLog::OrganizationId))
                .to_owned(),
        )
        .await?;
        m.create_index(index(
            "audit_log_org_action_idx",
            AuditLog::Table,
            vec![
                AuditLog::OrganizationId.into_iden(),
                AuditLog::Action.into_iden(),
                AuditLog::Id.into_iden(),
            ],
        ))
        .await?;

        m.create_table(
            Table::create()
                .table(UsageCounters::Table)
                .col(uuid(UsageCounters::OrganizationId))
                .col(text(UsageCounters::Metric, 64))
                .col(text(UsageCounters::Period, 10))
                .col(
                    ColumnDef::new(UsageCounters::Count)
                        .big_integer()
                        .not_null()
                        .default(0),
                )
                .col(time(UsageCounters::UpdatedAt))
                .primary_key(
                    Index::create()
                        .col(UsageCounters::OrganizationId)
                        .col(UsageCounters::Metric)
                        .col(UsageCounters::Period),
                )
                .foreign_key(&mut org_fk(
                    UsageCounters::Table,
                    UsageCounters::OrganizationId,
                ))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UsageCounters::Table.into_iden(),
            AuditLog::Table.into_iden(),
            Invitations::Table.into_iden(),
            ApiKeys::Table.into_iden(),
            RefreshTokens::Table.into_iden(),
            Sessions::Table.into_iden(),
            Memberships::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.drop_index(
            Index::drop()
                .name("organizations_custom_domain_key")
                .table(Organizations::Table)
                .to_owned(),
        )
        .await?;
        for column in [
            Organizations::DisplayName,
            Organizations::LogoUrl,
            Organizations::PrimaryColor,
            Organizations::AccentColor,
            Organizations::CustomDomain,
            Organizations::Plan,
            Organizations::SingleActiveSession,
            Organizations::Settings,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
