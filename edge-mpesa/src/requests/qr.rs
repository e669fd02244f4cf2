//! Dynamic QR codes.

use edge_core::Money;
use serde::{Deserialize, Serialize};

use super::{check_text, de_text, whole_kes};
use crate::client::ResponseCheck;
use crate::{Credentials, DarajaClient, Error};

/// What the QR code pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum QrTransactionCode {
    /// `BG`: buy goods (till).
    BuyGoods,
    /// `PB`: paybill.
    PayBill,
    /// `WA`: withdraw cash at an agent.
    WithdrawAtAgent,
    /// `SM`: send money to a phone.
    SendMoney,
    /// `SB`: send to a business.
    SendToBusiness,
}

impl QrTransactionCode {
    fn as_str(self) -> &'static str {
        match self {
            QrTransactionCode::BuyGoods => "BG",
            QrTransactionCode::PayBill => "PB",
            QrTransactionCode::WithdrawAtAgent => "WA",
            QrTransactionCode::SendMoney => "SM",
            QrTransactionCode::SendToBusiness => "SB",
        }
    }
}

/// Generates a dynamic M-Pesa QR code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicQr {
    merchant_name: String,
    reference: String,
    amount: Money,
    code: QrTransactionCode,
    credit_party: String,
    size: u32,
}

#[derive(Serialize)]
struct QrWire<'a> {
    #[serde(rename = "MerchantName")]
    merchant_name: &'a str,
    #[serde(rename = "RefNo")]
    ref_no: &'a str,
    #[serde(rename = "Amount")]
    amount: i64,
    #[serde(rename = "TrxCode")]
    trx_code: &'static str,
    #[serde(rename = "CPI")]
    cpi: &'a str,
    #[serde(rename = "Size")]
    size: String,
}

/// The generated QR code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct QrResponse {
    /// `ResponseCode` (Daraja puts a request id here, not `"0"`).
    #[serde(rename = "ResponseCode", deserialize_with = "de_text", default)]
    pub response_code: String,
    /// `RequestID`.
    #[serde(rename = "RequestID", deserialize_with = "de_text", default)]
    pub request_id: String,
    /// `ResponseDescription`.
    #[serde(rename = "ResponseDescription", deserialize_with = "de_text", default)]
    pub response_description: String,
    /// `QRCode`: a base64 PNG.
    #[serde(rename = "QRCode", deserialize_with = "de_text")]
    pub qr_code: String,
}

impl DynamicQr {
    /// A QR code of `size` pixels paying `amount` (whole KES) to `credit_party` (till,
    /// paybill, phone or business number, per `code`).
    pub fn new(
        merchant_name: impl Into<String>,
        reference: impl Into<String>,
        amount: Money,
        code: QrTransactionCode,
        credit_party: impl Into<String>,
        size: u32,
    ) -> Self {
        Self {
            merchant_name: merchant_name.into(),
            reference: reference.into(),
            amount,
            code,
            credit_party: credit_party.into(),
            size,
        }
    }

    fn body(&self) -> Result<Vec<u8>, Error> {
        let amount = whole_kes("Amount", &self.amount)?;
        check_text("MerchantName", &self.merchant_name, 1, 100)?;
        check_text("RefNo", &self.reference, 1, 100)?;
        check_text("CPI", &self.credit_party, 1, 20)?;
        if !(100..=2000).contains(&self.size) {
            return Err(Error::invalid("Size", "must be 100 to 2000 pixels"));
        }
        let wire = QrWire {
            merchant_name: &self.merchant_name,
            ref_no: &self.reference,
            amount,
            trx_code: self.code.as_str(),
            cpi: &self.credit_party,
            size: self.size.to_string(),
        };
        serde_json::to_vec(&wire).map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// The JSON body that would be sent.
    pub fn to_json(&self) -> Result<String, Error> {
        String::from_utf8(self.body()?).map_err(|e| Error::invalid("body", e.to_string()))
    }

    /// Sends the request (only the token comes from the credentials).
    pub async fn send(
        &self,
        client: &DarajaClient,
        credentials: &Credentials,
    ) -> Result<QrResponse, Error> {
        let body = self.body()?;
        client
            .post(
                credentials,
                "/mpesa/qrcode/v1/generate",
                body,
                ResponseCheck::None,
            )
            .await
    }
}
