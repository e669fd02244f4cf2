//! The in-memory [`Ledger`], for tests and for teams embedding the crates.
//!
//! All state sits behind one mutex; each call reads the clock once, checks everything,
//! and only then changes state, so a refused call changes nothing. Correct and simple
//! rather than fast.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};

use super::rules::{check_amount, check_currency, check_funds, check_transfer, crossing};
use super::{
    Account, Balance, CaptureRequest, Entry, Fingerprint, Hold, HoldStatus, Ledger, LedgerOutcome,
    ReserveRequest, Transfer, TransferRequest,
};
use crate::id::{EntryId, HoldId, OrgId, TransferId};
use crate::{
    BoxFuture, Currency, Error, IdempotencyKey, Money, Page, PageRequest, Result, SharedClock,
};

/// A [`Ledger`] kept in memory. Nothing survives the process.
#[derive(Debug)]
pub struct InMemoryLedger {
    clock: SharedClock,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    wallets: HashMap<OrgId, Wallet>,
    /// The posted balance of every account that has entries, per currency.
    balances: HashMap<(Account, Currency), Money>,
}

#[derive(Debug)]
struct Wallet {
    currency: Currency,
    credit_limit: Money,
    threshold: Option<Money>,
    /// Every entry of this organization's transfers, in sequence order.
    entries: Vec<Entry>,
    transfers: HashMap<TransferId, Transfer>,
    /// Holds as recorded: an active hold past `expires_at` stays `Active` here until
    /// [`Ledger::expire_holds`] records it; reads use [`Hold::as_of`].
    holds: HashMap<HoldId, Hold>,
    idempotency: HashMap<IdempotencyKey, Recorded>,
}

#[derive(Debug)]
struct Recorded {
    fingerprint: Fingerprint,
    outcome: Stored,
}

#[derive(Debug)]
enum Stored {
    Transfer(LedgerOutcome<Transfer>),
    Hold(LedgerOutcome<Hold>),
}

/// A transfer ready to post: everything computed, nothing applied.
struct Posting {
    transfer: Transfer,
    entries: [Entry; 2],
    from_after: Money,
    to_after: Money,
}

fn wallet_not_found() -> Error {
    Error::not_found("wallet")
}

fn stored_mismatch() -> Error {
    Error::internal("idempotency record holds a result of another kind")
}

impl InMemoryLedger {
    /// An empty ledger that reads the time from `clock`.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            clock,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        // A poisoned lock means a panic while holding it; calls never panic between their
        // checks and their changes, but money is not the place to assume it.
        self.state
            .lock()
            .map_err(|_| Error::internal("in-memory ledger lock poisoned"))
    }

    fn open_wallet_now(&self, org: OrgId, currency: Currency) -> Result<Balance> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        if let Some(wallet) = state.wallets.get(&org) {
            if wallet.currency != currency {
                return Err(Error::Conflict(format!(
                    "wallet already open in {}",
                    wallet.currency
                )));
            }
        } else {
            state.wallets.insert(
                org,
                Wallet {
                    currency,
                    credit_limit: Money::zero(currency),
                    threshold: None,
                    entries: Vec::new(),
                    transfers: HashMap::new(),
                    holds: HashMap::new(),
                    idempotency: HashMap::new(),
                },
            );
        }
        state.balance(org, now)
    }

    fn balance_now(&self, org: OrgId) -> Result<Balance> {
        let now = self.clock.now();
        self.lock()?.balance(org, now)
    }

    fn set_credit_limit_now(&self, org: OrgId, limit: Money) -> Result<Balance> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let wallet = state.wallets.get_mut(&org).ok_or_else(wallet_not_found)?;
        check_currency("credit_limit", limit, wallet.currency)?;
        if limit.is_negative() {
            return Err(Error::invalid("credit_limit", "must be zero or more"));
        }
        wallet.credit_limit = limit;
        state.balance(org, now)
    }

    fn set_threshold_now(&self, org: OrgId, threshold: Option<Money>) -> Result<Balance> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let wallet = state.wallets.get_mut(&org).ok_or_else(wallet_not_found)?;
        if let Some(threshold) = threshold {
            check_currency("low_balance_threshold", threshold, wallet.currency)?;
        }
        wallet.threshold = threshold;
        state.balance(org, now)
    }

    fn transfer_now(
        &self,
        org: OrgId,
        request: TransferRequest,
    ) -> Result<LedgerOutcome<Transfer>> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let wallet = state.wallets.get(&org).ok_or_else(wallet_not_found)?;
        let fingerprint = Fingerprint::transfer(&request);
        match wallet.replay(&request.idempotency_key, &fingerprint)? {
            Some(Stored::Transfer(outcome)) => return Ok(outcome),
            Some(Stored::Hold(_)) => return Err(stored_mismatch()),
            None => {}
        }

        check_transfer(org, &request, wallet.currency)?;
        let own = Account::Wallet(org);

        let before = state.balance(org, now)?;
        if request.from == own {
            check_funds(&before, request.amount)?;
        }
        let posting = state.prepare_posting(
            org,
            request.from,
            request.to,
            request.amount,
            request.idempotency_key.clone(),
            request.metadata,
            None,
            now,
        )?;
        let posted_after = posting.wallet_after(own, before.posted);
        let after = state.balance_with(org, posted_after, before.held)?;
        let outcome = LedgerOutcome {
            value: posting.transfer.clone(),
            events: crossing(&before, &after),
            balance: after,
            replayed: false,
        };

        state.apply_posting(org, posting);
        state.record(
            org,
            request.idempotency_key,
            fingerprint,
            Stored::Transfer(outcome.clone()),
        );
        Ok(outcome)
    }

    fn reserve_now(&self, org: OrgId, request: ReserveRequest) -> Result<LedgerOutcome<Hold>> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let wallet = state.wallets.get(&org).ok_or_else(wallet_not_found)?;
        let fingerprint = Fingerprint::reserve(&request);
        match wallet.replay(&request.idempotency_key, &fingerprint)? {
            Some(Stored::Hold(outcome)) => return Ok(outcome),
            Some(Stored::Transfer(_)) => return Err(stored_mismatch()),
            None => {}
        }

        check_amount("amount", request.amount, wallet.currency)?;
        if request.timeout <= chrono::TimeDelta::zero() {
            return Err(Error::invalid("timeout", "must be positive"));
        }
        let expires_at = now
            .checked_add_signed(request.timeout)
            .ok_or_else(|| Error::invalid("timeout", "is too long"))?;

        let before = state.balance(org, now)?;
        check_funds(&before, request.amount)?;
        let held_after = before.held.checked_add(request.amount)?;
        let after = state.balance_with(org, before.posted, held_after)?;
        let hold = Hold {
            id: HoldId::new(),
            org,
            amount: request.amount,
            status: HoldStatus::Active,
            captured: None,
            capture_transfer_id: None,
            idempotency_key: request.idempotency_key.clone(),
            metadata: request.metadata,
            created_at: now,
            expires_at,
            ended_at: None,
        };
        let outcome = LedgerOutcome {
            value: hold.clone(),
            events: crossing(&before, &after),
            balance: after,
            replayed: false,
        };

        if let Some(wallet) = state.wallets.get_mut(&org) {
            wallet.holds.insert(hold.id, hold);
        }
        state.record(
            org,
            request.idempotency_key,
            fingerprint,
            Stored::Hold(outcome.clone()),
        );
        Ok(outcome)
    }

    /// Captures (`Some(request)`) or releases (`None`) a hold.
    fn end_hold_now(
        &self,
        org: OrgId,
        hold_id: HoldId,
        key: IdempotencyKey,
        capture: Option<CaptureRequest>,
    ) -> Result<LedgerOutcome<Hold>> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let wallet = state.wallets.get(&org).ok_or_else(wallet_not_found)?;
        let fingerprint = match &capture {
            Some(request) => Fingerprint::capture(hold_id, request),
            None => Fingerprint::release(hold_id),
        };
        match wallet.replay(&key, &fingerprint)? {
            Some(Stored::Hold(outcome)) => return Ok(outcome),
            Some(Stored::Transfer(_)) => return Err(stored_mismatch()),
            None => {}
        }

        if let Some(amount) = capture.as_ref().and_then(|c| c.amount) {
            check_amount("amount", amount, wallet.currency)?;
        }
        let hold = wallet
            .holds
            .get(&hold_id)
            .cloned()
            .ok_or_else(|| Error::not_found("hold"))?
            .as_of(now);
        match hold.status {
            HoldStatus::Active => {}
            HoldStatus::Captured => return Err(Error::Conflict("hold already captured".into())),
            HoldStatus::Released => return Err(Error::Conflict("hold already released".into())),
            HoldStatus::Expired => return Err(Error::Conflict("hold already expired".into())),
        }

        let before = state.balance(org, now)?;
        let held_after = before.held.checked_sub(hold.amount)?;
        let mut ended = hold.clone();
        ended.ended_at = Some(now);
        let (posting, posted_after) = match capture {
            Some(request) => {
                let amount = request.amount.unwrap_or(hold.amount);
                if amount.checked_cmp(&hold.amount)?.is_gt() {
                    return Err(Error::invalid("amount", "is more than the hold"));
                }
                let posting = state.prepare_posting(
                    org,
                    Account::Wallet(org),
                    Account::PlatformRevenue,
                    amount,
                    key.clone(),
                    hold.metadata.clone(),
                    Some(hold.id),
                    now,
                )?;
                ended.status = HoldStatus::Captured;
                ended.captured = Some(amount);
                ended.capture_transfer_id = Some(posting.transfer.id);
                let posted_after = posting.wallet_after(Account::Wallet(org), before.posted);
                (Some(posting), posted_after)
            }
            None => {
                ended.status = HoldStatus::Released;
                (None, before.posted)
            }
        };
        let after = state.balance_with(org, posted_after, held_after)?;
        let outcome = LedgerOutcome {
            value: ended.clone(),
            events: crossing(&before, &after),
            balance: after,
            replayed: false,
        };

        if let Some(posting) = posting {
            state.apply_posting(org, posting);
        }
        if let Some(wallet) = state.wallets.get_mut(&org) {
            wallet.holds.insert(ended.id, ended);
        }
        state.record(org, key, fingerprint, Stored::Hold(outcome.clone()));
        Ok(outcome)
    }

    fn hold_now(&self, org: OrgId, hold: HoldId) -> Result<Hold> {
        let now = self.clock.now();
        let state = self.lock()?;
        let wallet = state.wallets.get(&org).ok_or_else(wallet_not_found)?;
        wallet
            .holds
            .get(&hold)
            .cloned()
            .map(|h| h.as_of(now))
            .ok_or_else(|| Error::not_found("hold"))
    }

    fn transfer_by_id(&self, org: OrgId, id: TransferId) -> Result<Transfer> {
        let state = self.lock()?;
        let wallet = state.wallets.get(&org).ok_or_else(wallet_not_found)?;
        wallet
            .transfers
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::not_found("transfer"))
    }

    fn entries_now(&self, org: OrgId, page: PageRequest) -> Result<Page<Entry>> {
        let after: u64 = page.after()?.unwrap_or(0);
        let limit = page.limit();
        let state = self.lock()?;
        let wallet = state.wallets.get(&org).ok_or_else(wallet_not_found)?;
        let rows: Vec<Entry> = wallet
            .entries
            .iter()
            .filter(|e| e.sequence > after)
            .take(limit as usize + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(rows, limit, |e| e.sequence))
    }

    fn expire_holds_now(&self, limit: u32) -> Result<Vec<Hold>> {
        let now = self.clock.now();
        let mut state = self.lock()?;
        let mut due: Vec<(DateTime<Utc>, HoldId, OrgId)> = state
            .wallets
            .iter()
            .flat_map(|(org, wallet)| {
                wallet
                    .holds
                    .values()
                    .filter(|h| h.status == HoldStatus::Active && h.expires_at <= now)
                    .map(move |h| (h.expires_at, h.id, *org))
            })
            .collect();
        due.sort();
        due.truncate(limit as usize);
        let mut expired = Vec::with_capacity(due.len());
        for (_, id, org) in due {
            if let Some(hold) = state
                .wallets
                .get_mut(&org)
                .and_then(|w| w.holds.get_mut(&id))
            {
                *hold = hold.clone().as_of(now);
                expired.push(hold.clone());
            }
        }
        Ok(expired)
    }

    fn platform_balance_now(&self, account: Account, currency: Currency) -> Result<Money> {
        let state = self.lock()?;
        Ok(state.posted(account, currency))
    }
}

impl Wallet {
    /// The stored outcome for `key` (flagged as a replay), or `None` if the key is new.
    fn replay(&self, key: &IdempotencyKey, fingerprint: &Fingerprint) -> Result<Option<Stored>> {
        let Some(recorded) = self.idempotency.get(key) else {
            return Ok(None);
        };
        if &recorded.fingerprint != fingerprint {
            return Err(Error::IdempotencyMismatch);
        }
        Ok(Some(match &recorded.outcome {
            Stored::Transfer(outcome) => Stored::Transfer(LedgerOutcome {
                replayed: true,
                ..outcome.clone()
            }),
            Stored::Hold(outcome) => Stored::Hold(LedgerOutcome {
                replayed: true,
                ..outcome.clone()
            }),
        }))
    }
}

impl State {
    fn posted(&self, account: Account, currency: Currency) -> Money {
        self.balances
            .get(&(account, currency))
            .copied()
            .unwrap_or(Money::zero(currency))
    }

    fn balance(&self, org: OrgId, now: DateTime<Utc>) -> Result<Balance> {
        let wallet = self.wallets.get(&org).ok_or_else(wallet_not_found)?;
        let held = Money::checked_sum(
            wallet.currency,
            wallet
                .holds
                .values()
                .filter(|h| h.status == HoldStatus::Active && now < h.expires_at)
                .map(|h| h.amount),
        )?;
        let posted = self.posted(Account::Wallet(org), wallet.currency);
        self.balance_with(org, posted, held)
    }

    fn balance_with(&self, org: OrgId, posted: Money, held: Money) -> Result<Balance> {
        let wallet = self.wallets.get(&org).ok_or_else(wallet_not_found)?;
        Ok(Balance {
            org,
            currency: wallet.currency,
            posted,
            held,
            available: posted.checked_sub(held)?,
            credit_limit: wallet.credit_limit,
            low_balance_threshold: wallet.threshold,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_posting(
        &self,
        org: OrgId,
        from: Account,
        to: Account,
        amount: Money,
        idempotency_key: IdempotencyKey,
        metadata: serde_json::Value,
        hold_id: Option<HoldId>,
        now: DateTime<Utc>,
    ) -> Result<Posting> {
        let wallet = self.wallets.get(&org).ok_or_else(wallet_not_found)?;
        let currency = amount.currency();
        let from_after = self.posted(from, currency).checked_sub(amount)?;
        let to_after = self.posted(to, currency).checked_add(amount)?;
        let transfer = Transfer {
            id: TransferId::new(),
            org,
            from,
            to,
            amount,
            idempotency_key,
            metadata,
            hold_id,
            created_at: now,
        };
        let next = wallet.entries.len() as u64 + 1;
        let entry = |sequence: u64, account: Account, amount: Money| Entry {
            id: EntryId::new(),
            org,
            sequence,
            transfer_id: transfer.id,
            hold_id,
            account,
            amount,
            created_at: now,
        };
        let entries = [
            entry(next, from, amount.checked_neg()?),
            entry(next + 1, to, amount),
        ];
        Ok(Posting {
            transfer,
            entries,
            from_after,
            to_after,
        })
    }

    fn apply_posting(&mut self, org: OrgId, posting: Posting) {
        let currency = posting.transfer.amount.currency();
        self.balances
            .insert((posting.transfer.from, currency), posting.from_after);
        self.balances
            .insert((posting.transfer.to, currency), posting.to_after);
        if let Some(wallet) = self.wallets.get_mut(&org) {
            wallet.entries.extend(posting.entries);
            wallet
                .transfers
                .insert(posting.transfer.id, posting.transfer);
        }
    }

    fn record(
        &mut self,
        org: OrgId,
        key: IdempotencyKey,
        fingerprint: Fingerprint,
        outcome: Stored,
    ) {
        if let Some(wallet) = self.wallets.get_mut(&org) {
            wallet.idempotency.insert(
                key,
                Recorded {
                    fingerprint,
                    outcome,
                },
            );
        }
    }
}

impl Posting {
    /// The posted balance of `account` after this posting, given its balance before.
    fn wallet_after(&self, account: Account, before: Money) -> Money {
        if self.transfer.from == account {
            self.from_after
        } else if self.transfer.to == account {
            self.to_after
        } else {
            before
        }
    }
}

impl Ledger for InMemoryLedger {
    fn open_wallet(&self, org: OrgId, currency: Currency) -> BoxFuture<'_, Result<Balance>> {
        Box::pin(async move { self.open_wallet_now(org, currency) })
    }

    fn balance(&self, org: OrgId) -> BoxFuture<'_, Result<Balance>> {
        Box::pin(async move { self.balance_now(org) })
    }

    fn set_credit_limit(&self, org: OrgId, limit: Money) -> BoxFuture<'_, Result<Balance>> {
        Box::pin(async move { self.set_credit_limit_now(org, limit) })
    }

    fn set_low_balance_threshold(
        &self,
        org: OrgId,
        threshold: Option<Money>,
    ) -> BoxFuture<'_, Result<Balance>> {
        Box::pin(async move { self.set_threshold_now(org, threshold) })
    }

    fn transfer(
        &self,
        org: OrgId,
        request: TransferRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Transfer>>> {
        Box::pin(async move { self.transfer_now(org, request) })
    }

    fn reserve(
        &self,
        org: OrgId,
        request: ReserveRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>>> {
        Box::pin(async move { self.reserve_now(org, request) })
    }

    fn capture(
        &self,
        org: OrgId,
        hold: HoldId,
        request: CaptureRequest,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>>> {
        Box::pin(async move {
            self.end_hold_now(org, hold, request.idempotency_key.clone(), Some(request))
        })
    }

    fn release(
        &self,
        org: OrgId,
        hold: HoldId,
        idempotency_key: IdempotencyKey,
    ) -> BoxFuture<'_, Result<LedgerOutcome<Hold>>> {
        Box::pin(async move { self.end_hold_now(org, hold, idempotency_key, None) })
    }

    fn hold(&self, org: OrgId, hold: HoldId) -> BoxFuture<'_, Result<Hold>> {
        Box::pin(async move { self.hold_now(org, hold) })
    }

    fn get_transfer(&self, org: OrgId, id: TransferId) -> BoxFuture<'_, Result<Transfer>> {
        Box::pin(async move { self.transfer_by_id(org, id) })
    }

    fn entries(&self, org: OrgId, page: PageRequest) -> BoxFuture<'_, Result<Page<Entry>>> {
        Box::pin(async move { self.entries_now(org, page) })
    }

    fn expire_holds(&self, limit: u32) -> BoxFuture<'_, Result<Vec<Hold>>> {
        Box::pin(async move { self.expire_holds_now(limit) })
    }

    fn platform_balance(
        &self,
        account: Account,
        currency: Currency,
    ) -> BoxFuture<'_, Result<Money>> {
        Box::pin(async move { self.platform_balance_now(account, currency) })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use crate::LedgerEvent;
    use std::sync::Arc;
    use std::task::{Context, Poll, Waker};

    use chrono::{TimeDelta, TimeZone};

    use super::*;
    use crate::{Clock, FixedClock};

    /// Drives a future to completion: the in-memory ledger never waits.
    fn run<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
        }
    }

    fn kes(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Kes)
    }

    fn key(text: &str) -> IdempotencyKey {
        IdempotencyKey::new(text).unwrap()
    }

    struct Fixture {
        clock: FixedClock,
        ledger: Arc<dyn Ledger>,
        org: OrgId,
    }

    fn fixture() -> Fixture {
        let clock = FixedClock::new(Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap());
        let ledger: Arc<dyn Ledger> = Arc::new(InMemoryLedger::new(Arc::new(clock.clone())));
        let org = OrgId::new();
        run(ledger.open_wallet(org, Currency::Kes)).unwrap();
        Fixture { clock, ledger, org }
    }

    impl Fixture {
        fn top_up(&self, minor: i64, k: &str) -> LedgerOutcome<Transfer> {
            self.top_up_org(self.org, minor, k)
        }

        fn top_up_org(&self, org: OrgId, minor: i64, k: &str) -> LedgerOutcome<Transfer> {
            run(self.ledger.transfer(
                org,
                TransferRequest::new(
                    Account::MpesaClearing,
                    Account::Wallet(org),
                    kes(minor),
                    key(k),
                ),
            ))
            .unwrap()
        }

        fn reserve(&self, minor: i64, k: &str) -> Result<LedgerOutcome<Hold>> {
            run(self.ledger.reserve(
                self.org,
                ReserveRequest::new(kes(minor), TimeDelta::minutes(10), key(k)),
            ))
        }

        fn capture(
            &self,
            hold: HoldId,
            minor: Option<i64>,
            k: &str,
        ) -> Result<LedgerOutcome<Hold>> {
            run(self.ledger.capture(
                self.org,
                hold,
                CaptureRequest {
                    amount: minor.map(kes),
                    idempotency_key: key(k),
                },
            ))
        }

        fn release(&self, hold: HoldId, k: &str) -> Result<LedgerOutcome<Hold>> {
            run(self.ledger.release(self.org, hold, key(k)))
        }

        fn balance(&self) -> Balance {
            run(self.ledger.balance(self.org)).unwrap()
        }

        fn all_entries(&self, org: OrgId) -> Vec<Entry> {
            let mut page = PageRequest {
                limit: Some(3),
                cursor: None,
            };
            let mut all = Vec::new();
            loop {
                let got = run(self.ledger.entries(org, page.clone())).unwrap();
                all.extend(got.items);
                match got.next_cursor {
                    Some(cursor) => page.cursor = Some(cursor),
                    None => return all,
                }
            }
        }
    }

    #[test]
    fn the_entries_of_every_transfer_sum_to_zero_and_so_do_all_balances() {
        let f = fixture();
        f.top_up(10_000, "t1");
        let hold = f.reserve(3_000, "r1").unwrap().value;
        f.capture(hold.id, Some(1_000), "c1").unwrap();
        run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::Wallet(f.org),
                Account::Adjustments,
                kes(500),
                key("a1"),
            ),
        ))
        .unwrap();

        let entries = f.all_entries(f.org);
        assert_eq!(entries.len(), 6);
        assert_eq!(
            entries.iter().map(|e| e.sequence).collect::<Vec<_>>(),
            vec![1, 2, 3, 4, 5, 6],
            "oldest first, gapless"
        );
        let mut per_transfer: BTreeMap<TransferId, i64> = BTreeMap::new();
        for entry in &entries {
            *per_transfer.entry(entry.transfer_id).or_default() += entry.amount.minor();
        }
        assert_eq!(per_transfer.len(), 3);
        assert!(
            per_transfer.values().all(|sum| *sum == 0),
            "{per_transfer:?}"
        );

        let balance = f.balance();
        assert_eq!(balance.posted, kes(10_000 - 1_000 - 500));
        assert_eq!(balance.held, kes(0));
        let wallet_sum: i64 = entries
            .iter()
            .filter(|e| e.account == Account::Wallet(f.org))
            .map(|e| e.amount.minor())
            .sum();
        assert_eq!(
            wallet_sum,
            balance.posted.minor(),
            "posted = sum of entries"
        );
        let platform = |account| run(f.ledger.platform_balance(account, Currency::Kes)).unwrap();
        assert_eq!(platform(Account::MpesaClearing), kes(-10_000));
        assert_eq!(platform(Account::PlatformRevenue), kes(1_000));
        assert_eq!(platform(Account::Adjustments), kes(500));
        assert_eq!(
            platform(Account::MpesaClearing).minor()
                + platform(Account::PlatformRevenue).minor()
                + platform(Account::Adjustments).minor()
                + platform(Account::PromotionalCredit).minor()
                + balance.posted.minor(),
            0
        );
    }

    #[test]
    fn available_never_goes_below_zero_and_a_refusal_changes_nothing() {
        let f = fixture();
        f.top_up(1_000, "t1");
        f.reserve(600, "r1").unwrap();
        match f.reserve(401, "r2") {
            Err(Error::InsufficientFunds {
                available,
                requested,
            }) => {
                assert_eq!(available, kes(400));
                assert_eq!(requested, kes(401));
            }
            other => panic!("unexpected {other:?}"),
        }
        let out = run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::Wallet(f.org),
                Account::Adjustments,
                kes(401),
                key("a1"),
            ),
        ));
        assert!(
            matches!(out, Err(Error::InsufficientFunds { .. })),
            "{out:?}"
        );
        assert_eq!(f.balance().available, kes(400));
        assert_eq!(f.all_entries(f.org).len(), 2);

        // Exactly down to zero is fine; the refused key was not recorded and can be retried.
        assert_eq!(f.reserve(400, "r2").unwrap().balance.available, kes(0));
    }

    #[test]
    fn a_credit_limit_lets_available_go_that_far_below_zero_and_no_further() {
        let f = fixture();
        let balance = run(f.ledger.set_credit_limit(f.org, kes(500))).unwrap();
        assert_eq!(balance.credit_limit, kes(500));
        f.top_up(100, "t1");
        assert_eq!(f.reserve(600, "r1").unwrap().balance.available, kes(-500));
        match f.reserve(1, "r2") {
            Err(Error::InsufficientFunds { available, .. }) => assert_eq!(available, kes(0)),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            run(f.ledger.set_credit_limit(f.org, kes(-1))),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            run(f
                .ledger
                .set_credit_limit(f.org, Money::from_minor(5, Currency::Ugx))),
            Err(Error::Validation(_))
        ));
        // Lowering the limit below what is used is allowed; it only stops new spending.
        run(f.ledger.set_credit_limit(f.org, kes(0))).unwrap();
        assert_eq!(f.balance().available, kes(-500));
        assert!(matches!(
            f.reserve(1, "r3"),
            Err(Error::InsufficientFunds { .. })
        ));
    }

    #[test]
    fn a_hold_is_captured_or_released_exactly_once() {
        let f = fixture();
        f.top_up(1_000, "t1");
        let a = f.reserve(300, "ra").unwrap().value;
        let b = f.reserve(200, "rb").unwrap().value;
        assert_eq!(f.balance().held, kes(500));

        let captured = f.capture(a.id, Some(100), "ca").unwrap();
        assert_eq!(captured.value.status, HoldStatus::Captured);
        assert_eq!(captured.value.captured, Some(kes(100)));
        assert_eq!(captured.balance.posted, kes(900));
        assert_eq!(captured.balance.held, kes(200));
        assert_eq!(
            captured.balance.available,
            kes(700),
            "the remainder is released"
        );
        let transfer = run(f
            .ledger
            .get_transfer(f.org, captured.value.capture_transfer_id.unwrap()))
        .unwrap();
        assert_eq!(transfer.hold_id, Some(a.id));
        assert_eq!(
            (transfer.from, transfer.to),
            (Account::Wallet(f.org), Account::PlatformRevenue)
        );

        // The same call again is the first result; any other ending is a conflict.
        let again = f.capture(a.id, Some(100), "ca").unwrap();
        assert!(again.replayed);
        assert_eq!(again.value, captured.value);
        for out in [f.release(a.id, "xa"), f.capture(a.id, None, "ya")] {
            match out {
                Err(Error::Conflict(message)) => assert_eq!(message, "hold already captured"),
                other => panic!("unexpected {other:?}"),
            }
        }

        let released = f.release(b.id, "xb").unwrap();
        assert_eq!(released.value.status, HoldStatus::Released);
        assert_eq!(released.balance.available, kes(900));
        assert!(f.release(b.id, "xb").unwrap().replayed);
        assert!(
            matches!(f.capture(b.id, None, "cb"), Err(Error::Conflict(m)) if m == "hold already released")
        );
        assert_eq!(f.balance().posted, kes(900));
        assert_eq!(f.all_entries(f.org).len(), 4, "one top-up and one capture");

        let c = f.reserve(100, "rc").unwrap().value;
        assert!(matches!(
            f.capture(c.id, Some(101), "cc"),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            f.capture(c.id, Some(0), "cc"),
            Err(Error::Validation(_))
        ));
        assert!(matches!(
            f.capture(HoldId::new(), None, "cc"),
            Err(Error::NotFound { entity: "hold" })
        ));
    }

    #[test]
    fn holds_past_their_timeout_are_released_once_whether_or_not_the_sweep_ran() {
        let f = fixture();
        f.top_up(1_000, "t1");
        let hold = f.reserve(400, "r1").unwrap().value;
        assert_eq!(hold.expires_at, f.clock.now() + TimeDelta::minutes(10));
        f.clock
            .advance(TimeDelta::minutes(10) - TimeDelta::seconds(1));
        assert!(run(f.ledger.expire_holds(10)).unwrap().is_empty());
        assert_eq!(f.balance().held, kes(400));

        f.clock.advance(TimeDelta::seconds(1));
        // Expired from `expires_at` on, before the sweep has run.
        assert_eq!(f.balance().held, kes(0));
        let seen = run(f.ledger.hold(f.org, hold.id)).unwrap();
        assert_eq!(seen.status, HoldStatus::Expired);
        assert_eq!(seen.ended_at, Some(hold.expires_at));
        assert!(
            matches!(f.capture(hold.id, None, "c1"), Err(Error::Conflict(m)) if m == "hold already expired")
        );

        let expired = run(f.ledger.expire_holds(10)).unwrap();
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].id, hold.id);
        assert_eq!(expired[0].status, HoldStatus::Expired);
        assert!(
            run(f.ledger.expire_holds(10)).unwrap().is_empty(),
            "recorded once"
        );
        assert!(
            matches!(f.release(hold.id, "x1"), Err(Error::Conflict(m)) if m == "hold already expired")
        );
        assert_eq!(f.balance().posted, kes(1_000));
    }

    #[test]
    fn the_sweep_takes_the_oldest_expiries_first_in_batches() {
        let f = fixture();
        f.top_up(1_000, "t1");
        let first = f.reserve(1, "r1").unwrap().value;
        f.clock.advance(TimeDelta::seconds(1));
        let second = f.reserve(1, "r2").unwrap().value;
        f.clock.advance(TimeDelta::hours(1));
        let batch = run(f.ledger.expire_holds(1)).unwrap();
        assert_eq!(
            batch.iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![first.id]
        );
        let batch = run(f.ledger.expire_holds(1)).unwrap();
        assert_eq!(
            batch.iter().map(|h| h.id).collect::<Vec<_>>(),
            vec![second.id]
        );
    }

    #[test]
    fn a_key_with_the_same_parameters_replays_and_with_others_is_refused() {
        let f = fixture();
        let first = f.top_up(1_000, "k1");
        assert!(!first.replayed);
        f.top_up(50, "k2");
        let again = f.top_up(1_000, "k1");
        assert!(again.replayed);
        assert_eq!(again.value, first.value);
        assert_eq!(
            again.balance, first.balance,
            "the first result, balance included"
        );
        assert_eq!(f.balance().posted, kes(1_050), "applied once");

        let other_amount = run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                kes(999),
                key("k1"),
            ),
        ));
        assert!(
            matches!(other_amount, Err(Error::IdempotencyMismatch)),
            "{other_amount:?}"
        );
        let other_metadata = run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                kes(1_000),
                key("k1"),
            )
            .metadata(serde_json::json!({"receipt": "X"})),
        ));
        assert!(matches!(other_metadata, Err(Error::IdempotencyMismatch)));
        assert!(
            matches!(f.reserve(1_000, "k1"), Err(Error::IdempotencyMismatch)),
            "another operation"
        );
        let hold = f.reserve(10, "r1").unwrap().value;
        assert!(matches!(
            f.release(hold.id, "r1"),
            Err(Error::IdempotencyMismatch)
        ));
        f.capture(hold.id, None, "c1").unwrap();
        assert!(matches!(
            f.capture(hold.id, Some(10), "c1"),
            Err(Error::IdempotencyMismatch)
        ));
        assert_eq!(f.all_entries(f.org).len(), 6);

        // Keys are scoped per organization.
        let other = OrgId::new();
        run(f.ledger.open_wallet(other, Currency::Kes)).unwrap();
        assert!(!f.top_up_org(other, 7, "k1").replayed);
    }

    #[test]
    fn the_low_balance_event_fires_on_crossing_and_replays_say_so() {
        let f = fixture();
        f.top_up(1_000, "t1");
        run(f.ledger.set_low_balance_threshold(f.org, Some(kes(500)))).unwrap();
        assert!(
            f.reserve(500, "r1").unwrap().events.is_empty(),
            "500 is not below 500"
        );
        let crossed = f.reserve(1, "r2").unwrap();
        assert_eq!(
            crossed.events,
            vec![LedgerEvent::LowBalance {
                org: f.org,
                available: kes(499),
                threshold: kes(500)
            }]
        );
        assert!(
            f.reserve(1, "r3").unwrap().events.is_empty(),
            "already below"
        );
        let replay = f.reserve(1, "r2").unwrap();
        assert!(replay.replayed);
        assert_eq!(replay.events, crossed.events);

        // Back above, then below again: a new crossing.
        f.top_up(100, "t2");
        let out = run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::Wallet(f.org),
                Account::Adjustments,
                kes(200),
                key("a1"),
            ),
        ))
        .unwrap();
        assert_eq!(out.events.len(), 1);
        let json = serde_json::to_value(&out.events[0]).unwrap();
        assert_eq!(json["type"], "low_balance");
    }

    #[test]
    fn another_organizations_wallet_and_holds_are_not_found() {
        let f = fixture();
        let other = OrgId::new();
        run(f.ledger.open_wallet(other, Currency::Kes)).unwrap();
        f.top_up_org(other, 1_000, "t1");
        let theirs = run(f.ledger.reserve(
            other,
            ReserveRequest::new(kes(10), TimeDelta::minutes(1), key("r1")),
        ))
        .unwrap()
        .value;

        let steal = run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::Wallet(other),
                Account::Wallet(f.org),
                kes(10),
                key("s1"),
            ),
        ));
        assert!(
            matches!(steal, Err(Error::NotFound { entity: "wallet" })),
            "{steal:?}"
        );
        assert!(matches!(
            f.capture(theirs.id, None, "c1"),
            Err(Error::NotFound { entity: "hold" })
        ));
        assert!(matches!(
            run(f.ledger.hold(f.org, theirs.id)),
            Err(Error::NotFound { .. })
        ));
        let platform_only = run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::PlatformRevenue,
                kes(10),
                key("p1"),
            ),
        ));
        assert!(matches!(platform_only, Err(Error::Validation(_))));
        assert!(matches!(
            run(f.ledger.balance(OrgId::new())),
            Err(Error::NotFound { entity: "wallet" })
        ));
        assert_eq!(run(f.ledger.balance(other)).unwrap().held, kes(10));
        assert!(f.all_entries(f.org).is_empty());
    }

    #[test]
    fn wallets_open_once_in_one_currency_and_amounts_are_checked() {
        let f = fixture();
        assert!(run(f.ledger.open_wallet(f.org, Currency::Kes)).is_ok());
        assert!(matches!(
            run(f.ledger.open_wallet(f.org, Currency::Ugx)),
            Err(Error::Conflict(_))
        ));
        for amount in [kes(0), kes(-5), Money::from_minor(5, Currency::Ugx)] {
            let out = run(f.ledger.transfer(
                f.org,
                TransferRequest::new(
                    Account::MpesaClearing,
                    Account::Wallet(f.org),
                    amount,
                    key("t"),
                ),
            ));
            assert!(
                matches!(out, Err(Error::Validation(_))),
                "{amount}: {out:?}"
            );
        }
        let overflow = run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                Money::from_minor(i64::MAX, Currency::Kes),
                key("big"),
            ),
        ));
        // The wallet is at i64::MAX: one more cent would overflow, and is refused.
        assert!(overflow.is_ok());
        let overflow = run(f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                kes(1),
                key("t3"),
            ),
        ));
        assert!(
            matches!(overflow, Err(Error::Validation(_))),
            "{overflow:?}"
        );
        let zero_timeout = run(f.ledger.reserve(
            f.org,
            ReserveRequest::new(kes(1), TimeDelta::zero(), key("r")),
        ));
        assert!(matches!(zero_timeout, Err(Error::Validation(_))));
    }

    #[test]
    fn concurrent_callers_never_overspend_and_one_key_applies_once() {
        let f = fixture();
        f.top_up(500, "t1");
        let ledger = Arc::clone(&f.ledger);
        let org = f.org;
        let results: Vec<Result<LedgerOutcome<Hold>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..16)
                .map(|i| {
                    let ledger = Arc::clone(&ledger);
                    scope.spawn(move || {
                        // Half the callers share one key; the others each have their own.
                        let k = if i % 2 == 0 {
                            "same".to_owned()
                        } else {
                            format!("r{i}")
                        };
                        run(ledger.reserve(
                            org,
                            ReserveRequest::new(kes(100), TimeDelta::minutes(5), key(&k)),
                        ))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let first_calls = results
            .iter()
            .filter(|r| matches!(r, Ok(o) if !o.replayed))
            .count();
        assert_eq!(first_calls, 5, "500 covers exactly five holds of 100");
        let shared: Vec<_> = results
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == 0)
            .map(|(_, r)| r.as_ref().map(|o| o.value.id).ok())
            .collect();
        assert!(shared.windows(2).all(|w| w[0] == w[1]), "{shared:?}");
        assert_eq!(f.balance().available, kes(0));
    }

    #[test]
    fn outcomes_round_trip_through_json_for_storage() {
        let f = fixture();
        f.top_up(1_000, "t1");
        let hold = f.reserve(300, "r1").unwrap().value;
        let outcome = f.capture(hold.id, Some(120), "c1").unwrap();
        let json = serde_json::to_value(&outcome).unwrap();
        assert_eq!(json["value"]["status"], "captured");
        assert_eq!(json["balance"]["available"]["amount"], "8.80");
        let back: LedgerOutcome<Hold> = serde_json::from_value(json).unwrap();
        assert_eq!(back, outcome);
        let entries = f.all_entries(f.org);
        let json = serde_json::to_value(&entries[2]).unwrap();
        assert_eq!(json["account"], format!("wallet:{}", f.org));
        assert_eq!(serde_json::from_value::<Entry>(json).unwrap(), entries[2]);
    }

    #[test]
    fn a_future_does_nothing_until_polled() {
        let f = fixture();
        let future = f.ledger.transfer(
            f.org,
            TransferRequest::new(
                Account::MpesaClearing,
                Account::Wallet(f.org),
                kes(5),
                key("t1"),
            ),
        );
        drop(future);
        assert_eq!(f.balance().posted, kes(0));
    }
}
