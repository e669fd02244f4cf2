//! Per-call credentials: one client serves every tenant.

use std::fmt;

use secrecy::SecretString;

use crate::ids::{PhoneNumberId, WabaId};

/// What a call needs to act for one tenant number: the phone number id, the tenant's access
/// token (a business integration system user token in the tech-provider model) and,
/// optionally, the WABA id.
///
/// `Debug` never shows the token.
#[derive(Clone)]
pub struct Credentials {
    phone_number_id: PhoneNumberId,
    access_token: SecretString,
    waba_id: Option<WabaId>,
    api_version: Option<String>,
}

impl Credentials {
    /// Credentials for sending from `phone_number_id` with `access_token`.
    pub fn new(phone_number_id: impl Into<PhoneNumberId>, access_token: SecretString) -> Self {
        Self {
            phone_number_id: phone_number_id.into(),
            access_token,
            waba_id: None,
            api_version: None,
        }
    }

    /// Sets the WABA that owns the number.
    pub fn waba_id(mut self, waba_id: impl Into<WabaId>) -> Self {
        self.waba_id = Some(waba_id.into());
        self
    }

    /// Overrides the client's Graph API version (such as `v25.0`) for calls with these
    /// credentials.
    pub fn api_version(mut self, version: impl Into<String>) -> Self {
        self.api_version = Some(version.into());
        self
    }

    /// The phone number id messages are sent from.
    pub fn phone_number_id(&self) -> &PhoneNumberId {
        &self.phone_number_id
    }

    /// The WABA id, if set.
    pub fn waba(&self) -> Option<&WabaId> {
        self.waba_id.as_ref()
    }

    /// The access token. Expose it only to put it in an `Authorization` header.
    pub fn access_token(&self) -> &SecretString {
        &self.access_token
    }

    pub(crate) fn version_override(&self) -> Option<&str> {
        self.api_version.as_deref()
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("phone_number_id", &self.phone_number_id)
            .field("access_token", &"[REDACTED]")
            .field("waba_id", &self.waba_id)
            .field("api_version", &self.api_version)
            .finish()
    }
}
