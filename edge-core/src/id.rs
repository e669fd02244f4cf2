//! Identifier newtypes.
//!
//! Every identifier is a UUIDv7: time-ordered, so new rows append to the end of B-tree
//! indexes and keyset pagination by id follows creation order. Each kind of id is its own
//! type, so an [`OrgId`] can never be passed where a [`UserId`] is expected.

/// The error returned when a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {input:?}: expected a UUID such as 01920000-0000-7000-8000-000000000000")]
pub struct ParseIdError {
    kind: &'static str,
    input: String,
}

impl ParseIdError {
    /// Which kind of id was being parsed, e.g. `"organization id"`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }
}

/// Defines a UUIDv7 identifier newtype with `Display`, `FromStr`, serde and conversions.
///
/// ```
/// edge_core::define_id!(
///     /// A widget's id.
///     WidgetId, "widget id"
/// );
/// let id = WidgetId::new();
/// assert_eq!(id.to_string().parse::<WidgetId>().unwrap(), id);
/// ```
#[macro_export]
macro_rules! define_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name($crate::__private::Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) id.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self($crate::__private::Uuid::now_v7())
            }

            /// Wraps an existing UUID (for example one read from the database).
            pub const fn from_uuid(uuid: $crate::__private::Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> $crate::__private::Uuid {
                self.0
            }

            /// What this id is called in error messages.
            pub const KIND: &'static str = $kind;
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::id::ParseIdError;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                $crate::__private::Uuid::parse_str(s.trim())
                    .map(Self)
                    .map_err(|_| $crate::id::ParseIdError::new($kind, s))
            }
        }

        impl ::std::convert::From<$crate::__private::Uuid> for $name {
            fn from(uuid: $crate::__private::Uuid) -> Self {
                Self(uuid)
            }
        }

        impl ::std::convert::From<$name> for $crate::__private::Uuid {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl $crate::__private::Serialize for $name {
            fn serialize<S: $crate::__private::Serializer>(
                &self,
                serializer: S,
            ) -> ::std::result::Result<S::Ok, S::Error> {
                $crate::__private::Serialize::serialize(&self.0, serializer)
            }
        }

        impl<'de> $crate::__private::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::Deserializer<'de>>(
                deserializer: D,
            ) -> ::std::result::Result<Self, D::Error> {
                <$crate::__private::Uuid as $crate::__private::Deserialize>::deserialize(deserializer)
                    .map(Self)
            }
        }
    };
}

impl ParseIdError {
    #[doc(hidden)]
    pub fn new(kind: &'static str, input: &str) -> Self {
        Self {
            kind,
            input: input.chars().take(64).collect(),
        }
    }
}

define_id!(
    /// An organization (tenant).
    OrgId, "organization id"
);
define_id!(
    /// A user account, which may belong to several organizations.
    UserId, "user id"
);
define_id!(
    /// A user's membership of one organization, with its role.
    MembershipId, "membership id"
);
define_id!(
    /// An API key issued to an organization.
    ApiKeyId, "API key id"
);
define_id!(
    /// A login session (the family of its refresh tokens).
    SessionId, "session id"
);
define_id!(
    /// A payment (STK push, B2C payout, …).
    PaymentId, "payment id"
);
define_id!(
    /// One HTTP request, as carried in `x-request-id` when the caller sends none.
    RequestId, "request id"
);
define_id!(
    /// A transfer in the wallet ledger.
    TransferId, "transfer id"
);
define_id!(
    /// A hold (reservation) on a wallet.
    HoldId, "hold id"
);
define_id!(
    /// One entry (one side of a transfer) in the wallet ledger.
    EntryId, "entry id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_round_trip_through_strings_and_json() {
        let id = OrgId::new();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let text = id.to_string();
        assert_eq!(text.parse::<OrgId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<OrgId>(&json).unwrap(), id);
    }

    #[test]
    fn later_ids_sort_after_earlier_ones() {
        let first = UserId::new();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = UserId::new();
        assert!(first < second);
    }

    #[test]
    fn a_bad_id_names_its_kind_and_input() {
        let err = "not-a-uuid".parse::<OrgId>().unwrap_err();
        assert_eq!(err.kind(), "organization id");
        let message = err.to_string();
        assert!(message.contains("organization id"), "{message}");
        assert!(message.contains("not-a-uuid"), "{message}");
    }
}
