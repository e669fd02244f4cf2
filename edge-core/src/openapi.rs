//! `utoipa::ToSchema` for the types whose JSON is written by hand (feature `openapi`).
//!
//! Each schema here describes what the type's `Serialize` really produces.

use std::borrow::Cow;

use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::{Account, Currency, Money, Msisdn};

macro_rules! uuid_schemas {
    ($($id:ident),* $(,)?) => {$(
        impl PartialSchema for crate::$id {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                    .description(Some(concat!("A UUIDv7 ", stringify!($id), ".")))
                    .into()
            }
        }

        impl ToSchema for crate::$id {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($id))
            }
        }
    )*};
}

uuid_schemas!(
    OrgId,
    UserId,
    MembershipId,
    ApiKeyId,
    SessionId,
    PaymentId,
    RequestId,
    TransferId,
    HoldId,
    EntryId,
);

/// `{"amount": "1500.00", "currency": "KES", "amount_minor": 150000}`; a request sends
/// `amount` and `currency` (`amount_minor` is ignored).
impl PartialSchema for Money {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .description(Some(
                "An amount of money. Requests send `amount` and `currency`; responses add \
                 `amount_minor`.",
            ))
            .property(
                "amount",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^-?[0-9]+(\.[0-9]+)?$"))
                    .description(Some("A decimal string, exact (never a float)."))
                    .examples(["1500.00"]),
            )
            .required("amount")
            .property("currency", Currency::schema())
            .required("currency")
            .property(
                "amount_minor",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .read_only(Some(true))
                    .description(Some("The amount in minor units (cents for KES).")),
            )
            .required("amount_minor")
            .into()
    }
}

impl ToSchema for Money {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Money")
    }
}

/// A string: E.164 in responses; requests may use the forms people type.
impl PartialSchema for Msisdn {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A mobile number. Responses use E.164 (`+254712345678`); requests may also \
                 send local forms such as `0712345678`.",
            ))
            .examples(["+254712345678"])
            .into()
    }
}

impl ToSchema for Msisdn {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Msisdn")
    }
}

/// A string: `wallet:<organization id>` or `platform:<name>`.
impl PartialSchema for Account {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A ledger account: `wallet:<organization id>`, `platform:revenue`, \
                 `platform:mpesa_clearing`, `platform:promotional_credit` or \
                 `platform:adjustments`.",
            ))
            .examples(["wallet:0190b5a4-7c1e-7d3a-9c2e-8f1a2b3c4d5e"])
            .into()
    }
}

impl ToSchema for Account {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Account")
    }
}
