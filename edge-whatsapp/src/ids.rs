//! Identifier newtypes. Every Graph id is a JSON string and stays a string here.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Wraps an id exactly as Meta wrote it.
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// The id as Meta wrote it.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// Unwraps the id.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id!(
    /// A business phone number id: the object messages are sent *from*
    /// (`POST /{phone_number_id}/messages`). Not the displayed phone number.
    PhoneNumberId
);
string_id!(
    /// A WhatsApp Business Account id; `entry[].id` in webhooks.
    WabaId
);
string_id!(
    /// A message id (`wamid.…`), returned by a send and used as the key of its statuses.
    MessageId
);
string_id!(
    /// A media id (a numeric string) from an upload or an inbound media message.
    MediaId
);
string_id!(
    /// A business-scoped user id (BSUID), such as `US.13491208655302741918`.
    UserId
);
