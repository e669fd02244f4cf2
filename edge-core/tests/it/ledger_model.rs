//! Model-based property test of the in-memory wallet ledger.
//!
//! Random sequences of top-ups, debits, reserves, captures (all or part), releases, clock
//! advances with expiry sweeps, replays of earlier calls and reuses of earlier keys with
//! other parameters run against [`InMemoryLedger`] and against a deliberately naive model
//! below. Every result (ok, insufficient, mismatch, conflict, not found, validation), every
//! balance after every step, and the entry history at the end must agree.

// Test code: clippy's allow-unwrap-in-tests does not reach the helpers of an integration test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use chrono::{TimeDelta, TimeZone, Utc};
use edge_core::{
    Account, CaptureRequest, Currency, Error, FixedClock, HoldId, HoldStatus, IdempotencyKey,
    InMemoryLedger, Ledger, LedgerEvent, LedgerOutcome, Money, OrgId, PageRequest, ReserveRequest,
    TransferId, TransferRequest,
};
use proptest::prelude::*;

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

fn metadata(note: u8) -> serde_json::Value {
    if note == 0 {
        serde_json::Value::Null
    } else {
        serde_json::json!({ "note": note, "source": "ledger_model" })
    }
}

/// An amount no generated call uses, so a reused key always carries other parameters.
const ODD_AMOUNT: i64 = 1_000_000_007;

#[derive(Debug, Clone)]
enum Op {
    Credit {
        org: usize,
        source: usize,
        amount: i64,
    },
    Debit {
        org: usize,
        to_revenue: bool,
        amount: i64,
    },
    Reserve {
        org: usize,
        amount: i64,
        timeout: i64,
    },
    Capture {
        hold: usize,
        permille: Option<u16>,
        foreign: bool,
    },
    Release {
        hold: usize,
        foreign: bool,
    },
    /// Move time on, then maybe run the expiry sweep.
    Expire {
        seconds: i64,
        sweep: bool,
    },
    /// Move time to just before, at, or just after a hold's expiry, then maybe sweep.
    ExpireAt {
        hold: usize,
        delta: i64,
        sweep: bool,
    },
    /// Change an organization's credit limit (possibly below what it already uses).
    SetLimit {
        org: usize,
        limit: i64,
    },
    /// Change or clear an organization's low-balance threshold.
    SetThreshold {
        org: usize,
        threshold: Option<i64>,
    },
    /// Spend exactly what the wallet can (or one more), to hit the limit's edge.
    SpendRest {
        org: usize,
        over: bool,
        as_reserve: bool,
    },
    Replay {
        call: usize,
    },
    /// Use an earlier key again: 0, a large debit; 1, a large reserve (both possibly in
    /// another organization); 2 and 3, the same call with one parameter changed.
    Reuse {
        call: usize,
        org_shift: usize,
        mode: u8,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..3usize, 1..5_000i64)
            .prop_map(|(org, source, amount)| Op::Credit { org, source, amount }),
        2 => (0..3usize, any::<bool>(), 1..3_000i64)
            .prop_map(|(org, to_revenue, amount)| Op::Debit { org, to_revenue, amount }),
        4 => (0..3usize, 1..3_000i64, 1..600i64)
            .prop_map(|(org, amount, timeout)| Op::Reserve { org, amount, timeout }),
        3 => (any::<usize>(), prop::option::of(1..1_200u16), prop::bool::weighted(0.1))
            .prop_map(|(hold, permille, foreign)| Op::Capture { hold, permille, foreign }),
        2 => (any::<usize>(), prop::bool::weighted(0.1))
            .prop_map(|(hold, foreign)| Op::Release { hold, foreign }),
        1 => (0..900i64, any::<bool>()).prop_map(|(seconds, sweep)| Op::Expire { seconds, sweep }),
        2 => (0..3usize, any::<bool>(), any::<bool>())
            .prop_map(|(org, over, as_reserve)| Op::SpendRest { org, over, as_reserve }),
        1 => (any::<usize>(), -1..=1i64, any::<bool>())
            .prop_map(|(hold, delta, sweep)| Op::ExpireAt { hold, delta, sweep }),
        1 => (0..3usize, prop::sample::select(vec![0i64, 300, 2_000]))
            .prop_map(|(org, limit)| Op::SetLimit { org, limit }),
        1 => (0..3usize, prop::option::of(0..3_000i64))
            .prop_map(|(org, threshold)| Op::SetThreshold { org, threshold }),
        2 => any::<usize>().prop_map(|call| Op::Replay { call }),
        2 => (any::<usize>(), 0..3usize, 0..4u8)
            .prop_map(|(call, org_shift, mode)| Op::Reuse { call, org_shift, mode }),
    ]
}

/// Per organization: credit limit (minor units) and low-balance threshold.
fn org_settings() -> impl Strategy<Value = (i64, Option<i64>)> {
    (
        prop::sample::select(vec![0i64, 0, 500]),
        prop::option::of(0..3_000i64),
    )
}

/// One call, with everything needed to issue it again.
#[derive(Debug, Clone, PartialEq)]
enum Call {
    Transfer {
        org: usize,
        from: Account,
        to: Account,
        amount: i64,
        /// Metadata `{"note": n}`, or none for 0.
        note: u8,
        key: String,
    },
    Reserve {
        org: usize,
        amount: i64,
        timeout: i64,
        note: u8,
        key: String,
    },
    Capture {
        org: usize,
        hold: usize,
        amount: Option<i64>,
        key: String,
    },
    Release {
        org: usize,
        hold: usize,
        key: String,
    },
}

impl Call {
    fn org(&self) -> usize {
        match self {
            Call::Transfer { org, .. }
            | Call::Reserve { org, .. }
            | Call::Capture { org, .. }
            | Call::Release { org, .. } => *org,
        }
    }

    fn key(&self) -> &str {
        match self {
            Call::Transfer { key, .. }
            | Call::Reserve { key, .. }
            | Call::Capture { key, .. }
            | Call::Release { key, .. } => key,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Detail {
    Transfer {
        from: Account,
        to: Account,
        amount: i64,
    },
    Hold {
        index: usize,
        status: HoldStatus,
        captured: Option<i64>,
    },
}

/// What both sides must agree on for a successful call.
#[derive(Debug, Clone, PartialEq)]
struct Summary {
    posted: i64,
    held: i64,
    available: i64,
    /// `(available, threshold)` of each low-balance event.
    events: Vec<(i64, i64)>,
    replayed: bool,
    detail: Detail,
}

#[derive(Debug, Clone, PartialEq)]
enum Res {
    Ok(Summary),
    Insufficient { available: i64, requested: i64 },
    Mismatch,
    Conflict(String),
    NotFound(&'static str),
    Validation,
}

// ---------------------------------------------------------------------------------------
// The model: a naive, sequential re-implementation.

#[derive(Debug, Clone, Copy, PartialEq)]
enum MStatus {
    Active,
    Captured,
    Released,
}

#[derive(Debug)]
struct MHold {
    org: usize,
    amount: i64,
    expires_at: i64,
    status: MStatus,
    captured: Option<i64>,
    swept: bool,
}

#[derive(Debug)]
struct MOrg {
    id: OrgId,
    posted: i64,
    limit: i64,
    threshold: Option<i64>,
    entries: Vec<(Account, i64)>,
    keys: HashMap<String, (Call, Summary)>,
}

#[derive(Debug)]
struct Model {
    now: i64,
    orgs: Vec<MOrg>,
    holds: Vec<MHold>,
    platform: HashMap<Account, i64>,
}

impl Model {
    fn status(&self, hold: usize) -> HoldStatus {
        let h = &self.holds[hold];
        match h.status {
            MStatus::Active if self.now >= h.expires_at => HoldStatus::Expired,
            MStatus::Active => HoldStatus::Active,
            MStatus::Captured => HoldStatus::Captured,
            MStatus::Released => HoldStatus::Released,
        }
    }

    /// `(posted, held, available)`.
    fn balance(&self, org: usize) -> (i64, i64, i64) {
        let posted = self.orgs[org].posted;
        let held: i64 = (0..self.holds.len())
            .filter(|&i| self.holds[i].org == org && self.status(i) == HoldStatus::Active)
            .map(|i| self.holds[i].amount)
            .sum();
        (posted, held, posted - held)
    }

    fn events(&self, org: usize, before: i64, after: i64) -> Vec<(i64, i64)> {
        match self.orgs[org].threshold {
            Some(t) if before >= t && after < t => vec![(after, t)],
            _ => Vec::new(),
        }
    }

    fn post(&mut self, org: usize, from: Account, to: Account, amount: i64) {
        let wallet = Account::Wallet(self.orgs[org].id);
        for (account, delta) in [(from, -amount), (to, amount)] {
            if account == wallet {
                self.orgs[org].posted += delta;
            } else {
                *self.platform.entry(account).or_default() += delta;
            }
            self.orgs[org].entries.push((account, delta));
        }
    }

    fn insufficient(&self, org: usize, available: i64, amount: i64) -> Option<Res> {
        let limit = self.orgs[org].limit;
        (available - amount < -limit).then(|| Res::Insufficient {
            available: (available + limit).max(0),
            requested: amount,
        })
    }

    fn apply(&mut self, call: &Call) -> Res {
        let org = call.org();
        if let Some((first, summary)) = self.orgs[org].keys.get(call.key()) {
            return if first == call {
                Res::Ok(Summary {
                    replayed: true,
                    ..summary.clone()
                })
            } else {
                Res::Mismatch
            };
        }
        let (_, _, before) = self.balance(org);
        let detail = match call {
            Call::Transfer {
                from, to, amount, ..
            } => {
                if *from == Account::Wallet(self.orgs[org].id)
                    && let Some(refused) = self.insufficient(org, before, *amount)
                {
                    return refused;
                }
                self.post(org, *from, *to, *amount);
                Detail::Transfer {
                    from: *from,
                    to: *to,
                    amount: *amount,
                }
            }
            Call::Reserve {
                amount, timeout, ..
            } => {
                if let Some(refused) = self.insufficient(org, before, *amount) {
                    return refused;
                }
                self.holds.push(MHold {
                    org,
                    amount: *amount,
                    expires_at: self.now + timeout,
                    status: MStatus::Active,
                    captured: None,
                    swept: false,
                });
                Detail::Hold {
                    index: self.holds.len() - 1,
                    status: HoldStatus::Active,
                    captured: None,
                }
            }
            Call::Capture { hold, .. } | Call::Release { hold, .. }
                if self.holds[*hold].org != org =>
            {
                return Res::NotFound("hold");
            }
            Call::Capture { hold, amount, .. } => {
                if let Some(conflict) = self.ended(*hold) {
                    return conflict;
                }
                let amount = amount.unwrap_or(self.holds[*hold].amount);
                if amount > self.holds[*hold].amount {
                    return Res::Validation;
                }
                let wallet = Account::Wallet(self.orgs[org].id);
                self.post(org, wallet, Account::PlatformRevenue, amount);
                self.holds[*hold].status = MStatus::Captured;
                self.holds[*hold].captured = Some(amount);
                Detail::Hold {
                    index: *hold,
                    status: HoldStatus::Captured,
                    captured: Some(amount),
                }
            }
            Call::Release { hold, .. } => {
                if let Some(conflict) = self.ended(*hold) {
                    return conflict;
                }
                self.holds[*hold].status = MStatus::Released;
                Detail::Hold {
                    index: *hold,
                    status: HoldStatus::Released,
                    captured: None,
                }
            }
        };
        let (posted, held, available) = self.balance(org);
        let summary = Summary {
            posted,
            held,
            available,
            events: self.events(org, before, available),
            replayed: false,
            detail,
        };
        self.orgs[org]
            .keys
            .insert(call.key().to_owned(), (call.clone(), summary.clone()));
        Res::Ok(summary)
    }

    fn ended(&self, hold: usize) -> Option<Res> {
        match self.status(hold) {
            HoldStatus::Active => None,
            HoldStatus::Captured => Some(Res::Conflict("hold already captured".into())),
            HoldStatus::Released => Some(Res::Conflict("hold already released".into())),
            HoldStatus::Expired => Some(Res::Conflict("hold already expired".into())),
        }
    }

    /// The holds the sweep should record now, sorted.
    fn sweep(&mut self) -> Vec<usize> {
        let mut swept = Vec::new();
        for i in 0..self.holds.len() {
            let h = &self.holds[i];
            if h.status == MStatus::Active && !h.swept && h.expires_at <= self.now {
                self.holds[i].swept = true;
                swept.push(i);
            }
        }
        swept
    }
}

// ---------------------------------------------------------------------------------------
// The real ledger, seen through the same summaries.

struct Real {
    clock: FixedClock,
    ledger: Arc<dyn Ledger>,
    orgs: Vec<OrgId>,
    holds: Vec<HoldId>,
}

impl Real {
    fn hold_index(&self, id: HoldId) -> usize {
        self.holds
            .iter()
            .position(|h| *h == id)
            .unwrap_or(usize::MAX)
    }

    fn summary<T>(&self, outcome: &LedgerOutcome<T>, detail: Detail) -> Summary {
        Summary {
            posted: outcome.balance.posted.minor(),
            held: outcome.balance.held.minor(),
            available: outcome.balance.available.minor(),
            events: outcome
                .events
                .iter()
                .map(|e| match e {
                    LedgerEvent::LowBalance {
                        org,
                        available,
                        threshold,
                    } => {
                        assert_eq!(*org, outcome.balance.org);
                        (available.minor(), threshold.minor())
                    }
                    other => panic!("unexpected event {other:?}"),
                })
                .collect(),
            replayed: outcome.replayed,
            detail,
        }
    }

    fn apply(&mut self, call: &Call) -> Res {
        let org = self.orgs[call.org()];
        let key = IdempotencyKey::new(call.key()).unwrap();
        let result = match call {
            Call::Transfer {
                from,
                to,
                amount,
                note,
                ..
            } => run(self.ledger.transfer(
                org,
                TransferRequest::new(*from, *to, kes(*amount), key).metadata(metadata(*note)),
            ))
            .map(|o| {
                let detail = Detail::Transfer {
                    from: o.value.from,
                    to: o.value.to,
                    amount: o.value.amount.minor(),
                };
                self.summary(&o, detail)
            }),
            Call::Reserve {
                amount,
                timeout,
                note,
                ..
            } => run(self.ledger.reserve(
                org,
                ReserveRequest::new(kes(*amount), TimeDelta::seconds(*timeout), key)
                    .metadata(metadata(*note)),
            ))
            .map(|o| {
                if !o.replayed {
                    self.holds.push(o.value.id);
                }
                self.hold_summary(&o)
            }),
            Call::Capture { hold, amount, .. } => run(self.ledger.capture(
                org,
                self.holds[*hold],
                CaptureRequest {
                    amount: amount.map(kes),
                    idempotency_key: key,
                },
            ))
            .map(|o| self.hold_summary(&o)),
            Call::Release { hold, .. } => {
                run(self.ledger.release(org, self.holds[*hold], key)).map(|o| self.hold_summary(&o))
            }
        };
        match result {
            Ok(summary) => Res::Ok(summary),
            Err(Error::InsufficientFunds {
                available,
                requested,
            }) => Res::Insufficient {
                available: available.minor(),
                requested: requested.minor(),
            },
            Err(Error::IdempotencyMismatch) => Res::Mismatch,
            Err(Error::Conflict(message)) => Res::Conflict(message),
            Err(Error::NotFound { entity }) => Res::NotFound(entity),
            Err(Error::Validation(_)) => Res::Validation,
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }

    fn hold_summary(&self, o: &LedgerOutcome<edge_core::Hold>) -> Summary {
        let detail = Detail::Hold {
            index: self.hold_index(o.value.id),
            status: o.value.status,
            captured: o.value.captured.map(|c| c.minor()),
        };
        self.summary(o, detail)
    }
}

// ---------------------------------------------------------------------------------------

fn check(settings: Vec<(i64, Option<i64>)>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let start = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
    let clock = FixedClock::new(start);
    let mut real = Real {
        clock: clock.clone(),
        ledger: Arc::new(InMemoryLedger::new(Arc::new(clock))),
        orgs: Vec::new(),
        holds: Vec::new(),
    };
    let mut model = Model {
        now: 0,
        orgs: Vec::new(),
        holds: Vec::new(),
        platform: HashMap::new(),
    };
    for (limit, threshold) in &settings {
        let id = OrgId::new();
        run(real.ledger.open_wallet(id, Currency::Kes)).unwrap();
        run(real.ledger.set_credit_limit(id, kes(*limit))).unwrap();
        run(real
            .ledger
            .set_low_balance_threshold(id, threshold.map(kes)))
        .unwrap();
        real.orgs.push(id);
        model.orgs.push(MOrg {
            id,
            posted: 0,
            limit: *limit,
            threshold: *threshold,
            entries: Vec::new(),
            keys: HashMap::new(),
        });
    }
    let n = settings.len();
    let sources = [
        Account::MpesaClearing,
        Account::PromotionalCredit,
        Account::Adjustments,
    ];
    let mut calls: Vec<Call> = Vec::new();
    let mut next_key = 0usize;
    let mut fresh_key = || {
        next_key += 1;
        format!("key-{next_key}")
    };

    for (step, op) in ops.into_iter().enumerate() {
        let call = match op {
            Op::Credit {
                org,
                source,
                amount,
            } => {
                let org = org % n;
                Some(Call::Transfer {
                    org,
                    from: sources[source % sources.len()],
                    to: Account::Wallet(real.orgs[org]),
                    amount,
                    note: 0,
                    key: fresh_key(),
                })
            }
            Op::Debit {
                org,
                to_revenue,
                amount,
            } => {
                let org = org % n;
                Some(Call::Transfer {
                    org,
                    from: Account::Wallet(real.orgs[org]),
                    to: if to_revenue {
                        Account::PlatformRevenue
                    } else {
                        Account::Adjustments
                    },
                    amount,
                    note: 0,
                    key: fresh_key(),
                })
            }
            Op::Reserve {
                org,
                amount,
                timeout,
            } => Some(Call::Reserve {
                org: org % n,
                amount,
                timeout,
                note: 0,
                key: fresh_key(),
            }),
            Op::Capture {
                hold,
                permille,
                foreign,
            } if !model.holds.is_empty() => {
                let hold = hold % model.holds.len();
                let h = &model.holds[hold];
                Some(Call::Capture {
                    org: (h.org + usize::from(foreign)) % n,
                    hold,
                    amount: permille.map(|p| (h.amount * i64::from(p) / 1_000).max(1)),
                    key: fresh_key(),
                })
            }
            Op::Release { hold, foreign } if !model.holds.is_empty() => {
                let hold = hold % model.holds.len();
                Some(Call::Release {
                    org: (model.holds[hold].org + usize::from(foreign)) % n,
                    hold,
                    key: fresh_key(),
                })
            }
            Op::Capture { .. } | Op::Release { .. } => None,
            Op::SpendRest {
                org,
                over,
                as_reserve,
            } => {
                let org = org % n;
                let (_, _, available) = model.balance(org);
                let rest = (available + model.orgs[org].limit).max(0) + i64::from(over);
                let amount = rest.max(1);
                Some(if as_reserve {
                    Call::Reserve {
                        org,
                        amount,
                        timeout: 300,
                        note: 0,
                        key: fresh_key(),
                    }
                } else {
                    Call::Transfer {
                        org,
                        from: Account::Wallet(real.orgs[org]),
                        to: Account::PlatformRevenue,
                        amount,
                        note: 0,
                        key: fresh_key(),
                    }
                })
            }
            Op::ExpireAt { .. } | Op::Expire { .. } => {
                let (seconds, sweep) = match op {
                    Op::ExpireAt { hold, delta, sweep } if !model.holds.is_empty() => {
                        let h = &model.holds[hold % model.holds.len()];
                        ((h.expires_at - model.now + delta).max(0), sweep)
                    }
                    Op::Expire { seconds, sweep } => (seconds, sweep),
                    _ => (0, false),
                };
                real.clock.advance(TimeDelta::seconds(seconds));
                model.now += seconds;
                if sweep {
                    let expected = model.sweep();
                    let mut got: Vec<usize> = run(real.ledger.expire_holds(10_000))
                        .unwrap()
                        .iter()
                        .map(|h| {
                            assert_eq!(h.status, HoldStatus::Expired);
                            real.hold_index(h.id)
                        })
                        .collect();
                    got.sort_unstable();
                    prop_assert_eq!(got, expected, "step {}: expired holds", step);
                }
                None
            }
            Op::SetLimit { org, limit } => {
                let org = org % n;
                let balance =
                    run(real.ledger.set_credit_limit(real.orgs[org], kes(limit))).unwrap();
                prop_assert_eq!(balance.credit_limit, kes(limit));
                model.orgs[org].limit = limit;
                None
            }
            Op::SetThreshold { org, threshold } => {
                let org = org % n;
                let balance = run(real
                    .ledger
                    .set_low_balance_threshold(real.orgs[org], threshold.map(kes)))
                .unwrap();
                prop_assert_eq!(balance.low_balance_threshold, threshold.map(kes));
                model.orgs[org].threshold = threshold;
                None
            }
            Op::Replay { call } if !calls.is_empty() => Some(calls[call % calls.len()].clone()),
            Op::Reuse {
                call,
                org_shift,
                mode,
            } if !calls.is_empty() => {
                let earlier = &calls[call % calls.len()];
                let org = (earlier.org() + org_shift) % n;
                let key = earlier.key().to_owned();
                Some(if mode >= 2 {
                    // The same call with one parameter changed.
                    let mut changed = earlier.clone();
                    let other = mode == 3;
                    match &mut changed {
                        Call::Transfer { amount, .. } if other => *amount += 1,
                        Call::Reserve { timeout, .. } if other => *timeout += 1,
                        Call::Transfer { note, .. } | Call::Reserve { note, .. } => *note += 1,
                        Call::Capture { amount, .. } => {
                            *amount = match (*amount, other) {
                                (None, _) => Some(1),
                                (Some(a), true) => Some(a + 1),
                                (Some(_), false) => None,
                            }
                        }
                        Call::Release { org, hold, key } => {
                            changed = Call::Capture {
                                org: *org,
                                hold: *hold,
                                amount: other.then_some(1),
                                key: key.clone(),
                            }
                        }
                    }
                    changed
                } else if mode == 1 {
                    Call::Reserve {
                        org,
                        amount: ODD_AMOUNT,
                        timeout: 60,
                        note: 0,
                        key,
                    }
                } else {
                    Call::Transfer {
                        org,
                        from: Account::Wallet(real.orgs[org]),
                        to: Account::Adjustments,
                        amount: ODD_AMOUNT,
                        note: 0,
                        key,
                    }
                })
            }
            Op::Replay { .. } | Op::Reuse { .. } => None,
        };

        if let Some(call) = call {
            let before = run(real.ledger.balance(real.orgs[call.org()])).unwrap();
            let expected = model.apply(&call);
            let got = real.apply(&call);
            prop_assert_eq!(&got, &expected, "step {}: {:?}", step, call);
            // Whatever the model says: a call that lowers available never takes it below
            // -credit_limit (lowering the limit itself may leave it there).
            if let Res::Ok(summary) = &got
                && !summary.replayed
                && summary.available < before.available.minor()
            {
                prop_assert!(summary.available >= -before.credit_limit.minor());
            }
            prop_assert_eq!(real.holds.len(), model.holds.len());
            calls.push(call);
        }

        for (i, id) in real.orgs.iter().enumerate() {
            let balance = run(real.ledger.balance(*id)).unwrap();
            let (posted, held, available) = model.balance(i);
            prop_assert_eq!(
                (
                    balance.posted.minor(),
                    balance.held.minor(),
                    balance.available.minor()
                ),
                (posted, held, available),
                "step {}: balance of org {}",
                step,
                i
            );
        }
    }

    // The history: the same entries in the same order, paged; every transfer sums to zero.
    let mut all_sum = 0i64;
    let mut per_account: HashMap<Account, i64> = HashMap::new();
    for (i, id) in real.orgs.iter().enumerate() {
        let mut page = PageRequest {
            limit: Some(7),
            cursor: None,
        };
        let mut entries = Vec::new();
        loop {
            let got = run(real.ledger.entries(*id, page.clone())).unwrap();
            entries.extend(got.items);
            match got.next_cursor {
                Some(cursor) => page.cursor = Some(cursor),
                None => break,
            }
        }
        let history: Vec<(Account, i64)> = entries
            .iter()
            .map(|e| (e.account, e.amount.minor()))
            .collect();
        prop_assert_eq!(&history, &model.orgs[i].entries, "history of org {}", i);
        let sequences: Vec<u64> = entries.iter().map(|e| e.sequence).collect();
        prop_assert_eq!(sequences, (1..=entries.len() as u64).collect::<Vec<_>>());
        let mut per_transfer: HashMap<TransferId, i64> = HashMap::new();
        for entry in &entries {
            prop_assert_eq!(entry.org, *id);
            *per_transfer.entry(entry.transfer_id).or_default() += entry.amount.minor();
            *per_account.entry(entry.account).or_default() += entry.amount.minor();
            all_sum += entry.amount.minor();
        }
        prop_assert!(per_transfer.values().all(|sum| *sum == 0));
        prop_assert_eq!(per_transfer.len() * 2, entries.len());
    }
    prop_assert_eq!(all_sum, 0, "all entries sum to zero per currency");
    for account in [
        Account::PlatformRevenue,
        Account::MpesaClearing,
        Account::PromotionalCredit,
        Account::Adjustments,
    ] {
        let balance = run(real.ledger.platform_balance(account, Currency::Kes)).unwrap();
        let expected = model.platform.get(&account).copied().unwrap_or(0);
        prop_assert_eq!(balance.minor(), expected, "{}", account);
        prop_assert_eq!(per_account.get(&account).copied().unwrap_or(0), expected);
    }

    // Every hold ended the way the model says, exactly once.
    for (index, id) in real.holds.iter().enumerate() {
        let org = real.orgs[model.holds[index].org];
        let hold = run(real.ledger.hold(org, *id)).unwrap();
        prop_assert_eq!(hold.status, model.status(index), "hold {}", index);
        prop_assert_eq!(
            hold.captured.map(|c| c.minor()),
            model.holds[index].captured
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_ledger_matches_a_naive_model(
        settings in prop::collection::vec(org_settings(), 2..=3),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        check(settings, ops)?;
    }
}
