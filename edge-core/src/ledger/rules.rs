//! The rules every ledger implementation applies the same way: amounts, currencies, the
//! spending floor and when a low-balance event fires. The in-memory ledger and the
//! reference server's SQL ledger both call these, so they cannot drift apart.

use crate::error::{Error, Result};
use crate::money::{Currency, Money};

use super::{Account, Balance, LedgerEvent, TransferRequest};
use crate::id::OrgId;

/// Refuses an amount not in the wallet's currency.
pub fn check_currency(field: &str, amount: Money, currency: Currency) -> Result<()> {
    if amount.currency() == currency {
        Ok(())
    } else {
        Err(Error::invalid(
            field,
            format!("must be in the wallet's currency, {currency}"),
        ))
    }
}

/// Refuses an amount not in the wallet's currency, or not above zero.
pub fn check_amount(field: &str, amount: Money, currency: Currency) -> Result<()> {
    check_currency(field, amount, currency)?;
    if amount.is_positive() {
        Ok(())
    } else {
        Err(Error::invalid(field, "must be more than zero"))
    }
}

/// Refuses lowering `available` by `amount` below `-credit_limit`, answering what could
/// still be spent (never below zero).
pub fn check_funds(balance: &Balance, amount: Money) -> Result<()> {
    let floor = balance.credit_limit.checked_neg()?;
    // Overflow here means "far below any floor".
    let short = match balance.available.checked_sub(amount) {
        Ok(after) => after.checked_cmp(&floor)?.is_lt(),
        Err(_) => true,
    };
    if short {
        let spendable = balance
            .available
            .checked_add(balance.credit_limit)
            .unwrap_or(Money::zero(balance.currency));
        let spendable = if spendable.is_negative() {
            Money::zero(balance.currency)
        } else {
            spendable
        };
        return Err(Error::InsufficientFunds {
            available: spendable,
            requested: amount,
        });
    }
    Ok(())
}

/// The low-balance event, if `available` went from at or above the threshold to below it.
pub fn crossing(before: &Balance, after: &Balance) -> Vec<LedgerEvent> {
    let Some(threshold) = after.low_balance_threshold else {
        return Vec::new();
    };
    if before.available.minor() >= threshold.minor() && after.available.minor() < threshold.minor()
    {
        vec![LedgerEvent::LowBalance {
            org: after.org,
            available: after.available,
            threshold,
        }]
    } else {
        Vec::new()
    }
}

/// Checks a transfer for `org`: it must touch the organization's own wallet (another
/// organization's wallet is `NotFound`), move between two different accounts, and carry a
/// positive amount in the wallet's currency.
pub fn check_transfer(org: OrgId, request: &TransferRequest, currency: Currency) -> Result<()> {
    let own = Account::Wallet(org);
    for account in [request.from, request.to] {
        if account.wallet_org().is_some_and(|other| other != org) {
            return Err(Error::not_found("wallet"));
        }
    }
    if request.from != own && request.to != own {
        return Err(Error::invalid(
            "from",
            "a transfer must debit or credit the organization's wallet",
        ));
    }
    if request.from == request.to {
        return Err(Error::invalid("to", "must differ from `from`"));
    }
    check_amount("amount", request.amount, currency)
}
