//! Initiator-authenticated APIs: B2C, B2B, transaction status, account balance, reversal.
//! Each answers synchronously with [`InitiatorAccepted`] and later posts a
//! [`ResultCallback`](crate::callbacks::ResultCallback) to its `ResultURL`.

use edge_core::{IdempotencyKey, Money, Msisdn};
use serde::{Deserialize, Serialize};

use super::{check_text, check_url, de_text, kenyan, whole_kes};
use crate::client::ResponseCheck;
use crate::credentials::check_shortcode;
use crate::{Credentials, DarajaClient, Error};

/// The synchronous acceptance of an initiator request. Not an outcome: wait for the result.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InitiatorAccepted {
    /// `OriginatorConversationID` (for B2C v3, the id we sent).
    #[serde(
        rename = "OriginatorConversationID",
        alias = "OriginatorCoversationID",
        deserialize_with = "de_text",
        default
    )]
    pub originator_conversation_id: String,
    /// `ConversationID` (`AG_…`).
    #[serde(rename = "ConversationID", deserialize_with = "de_text", default)]
    pub conversation_id: String,
    /// `ResponseCode` (`"0"`).
    #[serde(rename = "ResponseCode", deserialize_with = "de_text", default)]
    pub response_code: String,
    /// `ResponseDescription`.
    #[serde(rename = "ResponseDescription", deserialize_with = "de_text", default)]
    pub response_description: String,
}

/// The URLs and remarks every initiator request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Common {
    remarks: String,
    result_url: String,
    queue_timeout_url: String,
    occasion: Option<String>,
}

impl Common {
    fn new(remarks: String, result_url: String, queue_timeout_url: String) -> Self {
        Self {
            remarks,
            result_url,
            queue_timeout_url,
            occasion: None,
        }
    }

    fn check(&self, allow_http: bool) -> Result<(), Error> {
        check_text("Remarks", &self.remarks, 2, 100)?;
        check_url("ResultURL", &self.result_url, allow_http)?;
        check_url("QueueTimeOutURL", &self.queue_timeout_url, allow_http)?;
        if let Some(occasion) = &self.occasion {
            check_text("Occasion", occasion, 1, 100)?;
        }
        Ok(())
    }
}

fn to_vec<T: Serialize>(wire: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(wire).map_err(|e| Error::invalid("body", e.to_string()))
}

fn to_string(body: Vec<u8>) -> Result<String, Error> {
    String::from_utf8(body).map_err(|e| Error::invalid("body", e.to_string()))
}

async fn post(
    client: &DarajaClient,
    credentials: &Credentials,
    path: &str,
    body: Vec<u8>,
) -> Result<InitiatorAccepted, Error> {
    client
        .post(credentials, path, body, ResponseCheck::ResponseCodeZero)
        .await
}

macro_rules! common_setters_and_send {
    ($path:expr) => {
        /// `Occasion`, up to 100 characters.
        pub fn occasion(mut self, occasion: impl Into<String>) -> Self {
            self.common.occasion = Some(occasion.into());
            self
        }

        /// The JSON body that would be sent (strict validation: HTTPS URLs).
        pub fn to_json(&self, credentials: &Credentials) -> Result<String, Error> {
            to_string(self.body(credentials, false)?)
        }

        /// Sends the request.
        pub async fn send(
            &self,
            client: &DarajaClient,
            credentials: &Credentials,
        ) -> Result<InitiatorAccepted, Error> {
            let body = self.body(credentials, client.allow_http_callbacks())?;
            post(client, credentials, self.path(), body).await
        }

        #[allow(dead_code)]
        const DEFAULT_PATH: &'static str = $path;
    };
}

// ---------------------------------------------------------------------------------------
// B2C
// ---------------------------------------------------------------------------------------

/// The kind of B2C payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum B2cCommand {
    /// `BusinessPayment`.
    BusinessPayment,
    /// `SalaryPayment`.
    SalaryPayment,
    /// `PromotionPayment`.
    PromotionPayment,
}

impl B2cCommand {
    fn as_str(self) -> &'static str {
        match self {
            B2cCommand::BusinessPayment => "BusinessPayment",
            B2cCommand::SalaryPayment => "SalaryPayment",
            B2cCommand::PromotionPayment => "PromotionPayment",
        }
    }
}

/// The B2C API version enabled on the Daraja app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum B2cVersion {
    /// `/mpesa/b2c/v1/paymentrequest`: no `OriginatorConversationID` on the wire (Daraja
    /// makes one up, so there is no server-side idempotency), `Occasion`.
    V1,
    /// `/mpesa/b2c/v3/paymentrequest`: our `OriginatorConversationID` (duplicates are
    /// rejected, which makes a retry with the same id safe), `Occassion` (sic).
    #[default]
    V3,
}

/// A business-to-customer payout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2cPayment {
    originator_conversation_id: IdempotencyKey,
    command: B2cCommand,
    amount: Money,
    phone: Msisdn,
    common: Common,
    version: B2cVersion,
}

#[derive(Serialize)]
struct B2cWire<'a> {
    #[serde(
        rename = "OriginatorConversationID",
        skip_serializing_if = "Option::is_none"
    )]
    originator_conversation_id: Option<&'a str>,
    #[serde(rename = "InitiatorName")]
    initiator_name: &'a str,
    #[serde(rename = "SecurityCredential")]
    security_credential: &'a str,
    #[serde(rename = "CommandID")]
    command_id: &'static str,
    #[serde(rename = "Amount")]
    amount: String,
    #[serde(rename = "PartyA")]
    party_a: &'a str,
    #[serde(rename = "PartyB")]
    party_b: String,
    #[serde(rename = "Remarks")]
    remarks: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    queue_timeout_url: &'a str,
    #[serde(rename = "ResultURL")]
    result_url: &'a str,
    #[serde(rename = "Occassion", skip_serializing_if = "Option::is_none")]
    occassion: Option<&'a str>,
    #[serde(rename = "Occasion", skip_serializing_if = "Option::is_none")]
    occasion: Option<&'a str>,
}

impl B2cPayment {
    /// Pays `amount` (whole KES) to `phone` from the credentials' B2C shortcode.
    ///
    /// `originator_conversation_id` is the idempotency key: persist it before sending and
    /// reuse it for any retry of the same payout (v3 rejects duplicates with
    /// `500.002.1001` or result 15, never paying twice). At most 100 characters here.
    pub fn new(
        originator_conversation_id: IdempotencyKey,
        command: B2cCommand,
        amount: Money,
        phone: Msisdn,
        remarks: impl Into<String>,
        result_url: impl Into<String>,
        queue_timeout_url: impl Into<String>,
    ) -> Self {
        Self {
            originator_conversation_id,
            command,
            amount,
            phone,
            common: Common::new(remarks.into(), result_url.into(), queue_timeout_url.into()),
            version: B2cVersion::V3,
        }
    }

    /// The API version (default v3).
    pub fn version(mut self, version: B2cVersion) -> Self {
        self.version = version;
        self
    }

    fn path(&self) -> &'static str {
        match self.version {
            B2cVersion::V1 => "/mpesa/b2c/v1/paymentrequest",
            B2cVersion::V3 => "/mpesa/b2c/v3/paymentrequest",
        }
    }

    fn body(&self, credentials: &Credentials, allow_http: bool) -> Result<Vec<u8>, Error> {
        let amount = whole_kes("Amount", &self.amount)?;
        self.common.check(allow_http)?;
        check_text(
            "OriginatorConversationID",
            self.originator_conversation_id.as_str(),
            1,
            100,
        )?;
        let party_b = kenyan("PartyB", &self.phone)?;
        let shortcode = credentials.require_shortcode()?;
        let (initiator, credential) = credentials.require_initiator()?;
        let v3 = self.version == B2cVersion::V3;
        let occasion = self.common.occasion.as_deref();
        to_vec(&B2cWire {
            originator_conversation_id: v3.then(|| self.originator_conversation_id.as_str()),
            initiator_name: initiator,
            security_credential: credential,
            command_id: self.command.as_str(),
            amount: amount.to_string(),
            party_a: shortcode,
            party_b,
            remarks: &self.common.remarks,
            queue_timeout_url: &self.common.queue_timeout_url,
            result_url: &self.common.result_url,
            occassion: if v3 { occasion } else { None },
            occasion: if v3 { None } else { occasion },
        })
    }

    common_setters_and_send!("/mpesa/b2c/v3/paymentrequest");
}

// ---------------------------------------------------------------------------------------
// B2B
// ---------------------------------------------------------------------------------------

/// The kind of B2B payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum B2bCommand {
    /// `BusinessPayBill`: pay another business's paybill.
    BusinessPayBill,
    /// `BusinessBuyGoods`: pay a till.
    BusinessBuyGoods,
}

impl B2bCommand {
    fn as_str(self) -> &'static str {
        match self {
            B2bCommand::BusinessPayBill => "BusinessPayBill",
            B2bCommand::BusinessBuyGoods => "BusinessBuyGoods",
        }
    }
}

/// A business-to-business payment from the credentials' shortcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct B2bPayment {
    command: B2bCommand,
    amount: Money,
    receiver: String,
    account_reference: String,
    requester: Option<Msisdn>,
    common: Common,
}

#[derive(Serialize)]
struct B2bWire<'a> {
    #[serde(rename = "Initiator")]
    initiator: &'a str,
    #[serde(rename = "SecurityCredential")]
    security_credential: &'a str,
    #[serde(rename = "CommandID")]
    command_id: &'static str,
    #[serde(rename = "SenderIdentifierType")]
    sender_identifier_type: &'static str,
    #[serde(rename = "RecieverIdentifierType")]
    reciever_identifier_type: &'static str,
    #[serde(rename = "Amount")]
    amount: String,
    #[serde(rename = "PartyA")]
    party_a: &'a str,
    #[serde(rename = "PartyB")]
    party_b: &'a str,
    #[serde(rename = "AccountReference")]
    account_reference: &'a str,
    #[serde(rename = "Requester", skip_serializing_if = "Option::is_none")]
    requester: Option<String>,
    #[serde(rename = "Remarks")]
    remarks: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    queue_timeout_url: &'a str,
    #[serde(rename = "ResultURL")]
    result_url: &'a str,
    #[serde(rename = "Occasion", skip_serializing_if = "Option::is_none")]
    occasion: Option<&'a str>,
}

impl B2bPayment {
    /// Pays `amount` (whole KES) to the `receiver` shortcode or till.
    pub fn new(
        command: B2bCommand,
        amount: Money,
        receiver: impl Into<String>,
        account_reference: impl Into<String>,
        remarks: impl Into<String>,
        result_url: impl Into<String>,
        queue_timeout_url: impl Into<String>,
    ) -> Self {
        Self {
            command,
            amount,
            receiver: receiver.into(),
            account_reference: account_reference.into(),
            requester: None,
            common: Common::new(remarks.into(), result_url.into(), queue_timeout_url.into()),
        }
    }

    /// `Requester`: the customer on whose behalf the business pays.
    pub fn requester(mut self, requester: Msisdn) -> Self {
        self.requester = Some(requester);
        self
    }

    fn path(&self) -> &'static str {
        Self::DEFAULT_PATH
    }

    fn body(&self, credentials: &Credentials, allow_http: bool) -> Result<Vec<u8>, Error> {
        let amount = whole_kes("Amount", &self.amount)?;
        self.common.check(allow_http)?;
        check_shortcode("PartyB", &self.receiver)?;
        check_text("AccountReference", &self.account_reference, 1, 13)?;
        let requester = self
            .requester
            .as_ref()
            .map(|r| kenyan("Requester", r))
            .transpose()?;
        let shortcode = credentials.require_shortcode()?;
        let (initiator, credential) = credentials.require_initiator()?;
        to_vec(&B2bWire {
            initiator,
            security_credential: credential,
            command_id: self.command.as_str(),
            sender_identifier_type: "4",
            reciever_identifier_type: "4",
            amount: amount.to_string(),
            party_a: shortcode,
            party_b: &self.receiver,
            account_reference: &self.account_reference,
            requester,
            remarks: &self.common.remarks,
            queue_timeout_url: &self.common.queue_timeout_url,
            result_url: &self.common.result_url,
            occasion: self.common.occasion.as_deref(),
        })
    }

    common_setters_and_send!("/mpesa/b2b/v1/paymentrequest");
}

// ---------------------------------------------------------------------------------------
// Transaction status
// ---------------------------------------------------------------------------------------

/// What `PartyA` of a status query is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum IdentifierType {
    /// `1`: an MSISDN.
    Msisdn,
    /// `2`: a till number.
    Till,
    /// `4`: an organisation shortcode (the default).
    #[default]
    Shortcode,
}

impl IdentifierType {
    fn as_str(self) -> &'static str {
        match self {
            IdentifierType::Msisdn => "1",
            IdentifierType::Till => "2",
            IdentifierType::Shortcode => "4",
        }
    }
}

/// Asks for the status of a transaction, by receipt and/or originator conversation id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionStatusQuery {
    transaction_id: Option<String>,
    original_conversation_id: Option<String>,
    party_a: Option<(String, IdentifierType)>,
    common: Common,
}

#[derive(Serialize)]
struct StatusWire<'a> {
    #[serde(rename = "Initiator")]
    initiator: &'a str,
    #[serde(rename = "SecurityCredential")]
    security_credential: &'a str,
    #[serde(rename = "CommandID")]
    command_id: &'static str,
    #[serde(rename = "TransactionID", skip_serializing_if = "Option::is_none")]
    transaction_id: Option<&'a str>,
    #[serde(
        rename = "OriginalConversationID",
        skip_serializing_if = "Option::is_none"
    )]
    original_conversation_id: Option<&'a str>,
    #[serde(rename = "PartyA")]
    party_a: &'a str,
    #[serde(rename = "IdentifierType")]
    identifier_type: &'static str,
    #[serde(rename = "ResultURL")]
    result_url: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    queue_timeout_url: &'a str,
    #[serde(rename = "Remarks")]
    remarks: &'a str,
    #[serde(rename = "Occasion", skip_serializing_if = "Option::is_none")]
    occasion: Option<&'a str>,
}

impl TransactionStatusQuery {
    /// A status query; name the transaction with [`Self::transaction_id`] and/or
    /// [`Self::original_conversation_id`].
    pub fn new(
        remarks: impl Into<String>,
        result_url: impl Into<String>,
        queue_timeout_url: impl Into<String>,
    ) -> Self {
        Self {
            transaction_id: None,
            original_conversation_id: None,
            party_a: None,
            common: Common::new(remarks.into(), result_url.into(), queue_timeout_url.into()),
        }
    }

    /// `TransactionID`: the M-Pesa receipt.
    pub fn transaction_id(mut self, receipt: impl Into<String>) -> Self {
        self.transaction_id = Some(receipt.into());
        self
    }

    /// `OriginalConversationID`: the `OriginatorConversationID` of the transaction.
    pub fn original_conversation_id(mut self, id: impl Into<String>) -> Self {
        self.original_conversation_id = Some(id.into());
        self
    }

    /// `PartyA` and its type (default: the credentials' shortcode, type 4).
    pub fn party(mut self, party: impl Into<String>, kind: IdentifierType) -> Self {
        self.party_a = Some((party.into(), kind));
        self
    }

    fn path(&self) -> &'static str {
        Self::DEFAULT_PATH
    }

    fn body(&self, credentials: &Credentials, allow_http: bool) -> Result<Vec<u8>, Error> {
        self.common.check(allow_http)?;
        if self.transaction_id.is_none() && self.original_conversation_id.is_none() {
            return Err(Error::invalid(
                "TransactionID",
                "name the transaction by receipt or by OriginalConversationID",
            ));
        }
        if let Some(id) = &self.transaction_id {
            check_text("TransactionID", id, 1, 40)?;
        }
        if let Some(id) = &self.original_conversation_id {
            check_text("OriginalConversationID", id, 1, 100)?;
        }
        let (party_a, identifier_type) = match &self.party_a {
            Some((party, kind)) => {
                check_text("PartyA", party, 1, 20)?;
                (party.as_str(), *kind)
            }
            None => (credentials.require_shortcode()?, IdentifierType::Shortcode),
        };
        let (initiator, credential) = credentials.require_initiator()?;
        to_vec(&StatusWire {
            initiator,
            security_credential: credential,
            command_id: "TransactionStatusQuery",
            transaction_id: self.transaction_id.as_deref(),
            original_conversation_id: self.original_conversation_id.as_deref(),
            party_a,
            identifier_type: identifier_type.as_str(),
            result_url: &self.common.result_url,
            queue_timeout_url: &self.common.queue_timeout_url,
            remarks: &self.common.remarks,
            occasion: self.common.occasion.as_deref(),
        })
    }

    common_setters_and_send!("/mpesa/transactionstatus/v1/query");
}

// ---------------------------------------------------------------------------------------
// Account balance
// ---------------------------------------------------------------------------------------

/// Asks for the balances of the credentials' shortcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBalanceQuery {
    common: Common,
}

#[derive(Serialize)]
struct BalanceWire<'a> {
    #[serde(rename = "Initiator")]
    initiator: &'a str,
    #[serde(rename = "SecurityCredential")]
    security_credential: &'a str,
    #[serde(rename = "CommandID")]
    command_id: &'static str,
    #[serde(rename = "PartyA")]
    party_a: &'a str,
    #[serde(rename = "IdentifierType")]
    identifier_type: &'static str,
    #[serde(rename = "Remarks")]
    remarks: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    queue_timeout_url: &'a str,
    #[serde(rename = "ResultURL")]
    result_url: &'a str,
}

impl AccountBalanceQuery {
    /// A balance query.
    pub fn new(
        remarks: impl Into<String>,
        result_url: impl Into<String>,
        queue_timeout_url: impl Into<String>,
    ) -> Self {
        Self {
            common: Common::new(remarks.into(), result_url.into(), queue_timeout_url.into()),
        }
    }

    fn path(&self) -> &'static str {
        Self::DEFAULT_PATH
    }

    fn body(&self, credentials: &Credentials, allow_http: bool) -> Result<Vec<u8>, Error> {
        self.common.check(allow_http)?;
        let shortcode = credentials.require_shortcode()?;
        let (initiator, credential) = credentials.require_initiator()?;
        to_vec(&BalanceWire {
            initiator,
            security_credential: credential,
            command_id: "AccountBalance",
            party_a: shortcode,
            identifier_type: "4",
            remarks: &self.common.remarks,
            queue_timeout_url: &self.common.queue_timeout_url,
            result_url: &self.common.result_url,
        })
    }

    common_setters_and_send!("/mpesa/accountbalance/v1/query");
}

// ---------------------------------------------------------------------------------------
// Reversal
// ---------------------------------------------------------------------------------------

/// Reverses a transaction received on the credentials' shortcode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    transaction_id: String,
    amount: Money,
    common: Common,
}

#[derive(Serialize)]
struct ReversalWire<'a> {
    #[serde(rename = "Initiator")]
    initiator: &'a str,
    #[serde(rename = "SecurityCredential")]
    security_credential: &'a str,
    #[serde(rename = "CommandID")]
    command_id: &'static str,
    #[serde(rename = "TransactionID")]
    transaction_id: &'a str,
    #[serde(rename = "Amount")]
    amount: String,
    #[serde(rename = "ReceiverParty")]
    receiver_party: &'a str,
    #[serde(rename = "RecieverIdentifierType")]
    reciever_identifier_type: &'static str,
    #[serde(rename = "ResultURL")]
    result_url: &'a str,
    #[serde(rename = "QueueTimeOutURL")]
    queue_timeout_url: &'a str,
    #[serde(rename = "Remarks")]
    remarks: &'a str,
    #[serde(rename = "Occasion", skip_serializing_if = "Option::is_none")]
    occasion: Option<&'a str>,
}

impl Reversal {
    /// Reverses `amount` (whole KES) of the transaction with receipt `transaction_id`.
    pub fn new(
        transaction_id: impl Into<String>,
        amount: Money,
        remarks: impl Into<String>,
        result_url: impl Into<String>,
        queue_timeout_url: impl Into<String>,
    ) -> Self {
        Self {
            transaction_id: transaction_id.into(),
            amount,
            common: Common::new(remarks.into(), result_url.into(), queue_timeout_url.into()),
        }
    }

    fn path(&self) -> &'static str {
        Self::DEFAULT_PATH
    }

    fn body(&self, credentials: &Credentials, allow_http: bool) -> Result<Vec<u8>, Error> {
        let amount = whole_kes("Amount", &self.amount)?;
        self.common.check(allow_http)?;
        check_text("TransactionID", &self.transaction_id, 1, 40)?;
        let shortcode = credentials.require_shortcode()?;
        let (initiator, credential) = credentials.require_initiator()?;
        to_vec(&ReversalWire {
            initiator,
            security_credential: credential,
            command_id: "TransactionReversal",
            transaction_id: &self.transaction_id,
            amount: amount.to_string(),
            receiver_party: shortcode,
            reciever_identifier_type: "11",
            result_url: &self.common.result_url,
            queue_timeout_url: &self.common.queue_timeout_url,
            remarks: &self.common.remarks,
            occasion: self.common.occasion.as_deref(),
        })
    }

    common_setters_and_send!("/mpesa/reversal/v1/request");
}
